"""Logging of a Snakemake job into its log file (progress, ETA, warnings and tracebacks)."""

import logging
import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) says nothing about the study.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def log_to(path: str) -> None:
    """Send logging and stderr, Python's and the C++ libraries', to the job's log file; a job that
    fails still says why in one line on the console (Snakemake's own message names only the script)."""
    console = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    sys.excepthook = _cause_to_console(console, path)
    stream = open(path, "a", buffering=1)
    os.dup2(stream.fileno(), sys.stderr.fileno())
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    logging.getLogger("absl").setLevel(logging.WARNING)


def _cause_to_console(console, path: str):
    """An excepthook: the traceback into the log (stderr by then), its last line onto the console."""

    def hook(kind, error, traceback):
        sys.__excepthook__(kind, error, traceback)
        cause = " ".join(str(error).split())
        console.write(f"Job failed ({path}): {kind.__name__}: {cause}\n")

    return hook
