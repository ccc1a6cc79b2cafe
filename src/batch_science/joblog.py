"""Logging of a Snakemake job into its log file (progress, ETA, warnings and tracebacks)."""
import logging
import sys


def log_to(path: str) -> None:
    """Send logging and stderr (TensorFlow's C++ messages, tracebacks) to the job's log file."""
    stream = open(path, "a", buffering=1)
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    logging.getLogger("absl").setLevel(logging.WARNING)
