"""Logging of a Snakemake job into its log file (progress, ETA, warnings and tracebacks)."""

import logging
import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) says nothing about the study.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def log_to(path: str) -> None:
    """Send logging and stderr, Python's and the C++ libraries', to the job's log file."""
    stream = open(path, "a", buffering=1)
    os.dup2(stream.fileno(), sys.stderr.fileno())
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    logging.getLogger("absl").setLevel(logging.WARNING)
