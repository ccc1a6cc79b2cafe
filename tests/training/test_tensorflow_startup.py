"""A job log starts with what the job does: TensorFlow's C++ start-up lines are filtered out at the
file-descriptor level while TensorFlow starts (training/device.py), and kept with BATCH_SCIENCE_TF_DEBUG=1."""

import os
import subprocess
import sys

import pytest

# What TensorFlow 2.21 writes to fd 2 as it starts on a host without a GPU (seen in tune logs).
STARTUP_MARKERS = ("absl::InitializeLog", "oneDNN custom operations", "cuda drivers", "cuInit", "cuda_platform")

JOB = """
import logging, os, sys
from batch_science.joblog import log_to
from batch_science.training.device import configure_tensorflow, tensorflow_startup_filtered
log_to(sys.argv[1])
with tensorflow_startup_filtered():
    os.write(2, b"a line of the job itself, from C\\n")
configure_tensorflow(1)
logging.getLogger("job").info("trained")
"""


def job_log(tmp_path, **environment) -> str:
    log = tmp_path / "job.log"
    env = {**os.environ, **environment}
    subprocess.run([sys.executable, "-c", JOB, str(log)], env=env, check=True, timeout=300)
    return log.read_text()


@pytest.mark.slow
def test_job_log_has_no_tensorflow_startup_lines_but_keeps_its_own(tmp_path):
    text = job_log(tmp_path)
    assert not [line for line in text.splitlines() if any(m in line for m in STARTUP_MARKERS)], text
    assert "a line of the job itself, from C" in text and "trained" in text, text


@pytest.mark.slow
def test_debug_mode_keeps_the_startup_lines(tmp_path):
    text = job_log(tmp_path, BATCH_SCIENCE_TF_DEBUG="1")
    # Also what shows that the test above can fail: TensorFlow does write them here.
    assert any(marker in text for marker in STARTUP_MARKERS), text
