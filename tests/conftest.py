import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"
# Step budget of the tests that signal a tune job mid-trial: 5000 steps a trial at batch 32 (the
# minimum, 200, at 512), long enough for a signal to land mid-trial on a fast machine.
SIGNALLED_STEP_BUDGET = {"examples": 160000, "min_steps": 200}
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_config():
    from batch_science.config import load_config

    return load_config(TINY_CONFIG)


@pytest.fixture(scope="session")
def mnist1d_data_dir(tmp_path_factory):
    """MNIST-1D prepared once per test session through the real tfds builder."""
    from batch_science import data

    data_dir = tmp_path_factory.mktemp("tfds")
    data.prepare("mnist1d", str(data_dir))
    return str(data_dir)


@pytest.fixture(scope="session")
def prepared_data_dir(mnist1d_data_dir):
    """mnist1d_data_dir with the flag file that tells Snakemake's prepare_data it is done."""
    Path(mnist1d_data_dir, "mnist1d.prepared").touch()
    return mnist1d_data_dir


@pytest.fixture(scope="session")
def synthetic_text_data_dir(tmp_path_factory):
    """The built-in generated text corpus, prepared once per test session through its tfds builder."""
    from batch_science import data

    data_dir = tmp_path_factory.mktemp("tfds_text")
    data.prepare("synthetic_text", str(data_dir))
    return str(data_dir)


def run_snakemake(workdir: Path, *args, check=True, timeout=900):
    """Run the repository's workflow with `workdir` as its working directory."""
    command = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 600):
    """Poll `condition` until it is truthy; fail naming `what` if the run ends or hangs first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"snakemake ended (rc {process.returncode}) before {what}:\n{(out or '')[-3000:]}\n{(err or '')[-2000:]}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no {what} after {timeout}s")
