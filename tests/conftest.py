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
    from batch_science.tuning.study_config import load_config

    return load_config(TINY_CONFIG)


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory):
    """The working folder of the tiny study (tests/configs/tiny.yaml) run once through Snakemake to its figures."""
    workdir = tmp_path_factory.mktemp("tiny_study")
    run_snakemake(workdir, "--cores", "2", "--configfile", str(TINY_CONFIG))
    return workdir


def prepared(tmp_path_factory, dataset: str) -> str:
    """A fresh data folder with `dataset` prepared in it through its real tfds builder."""
    from batch_science.data.load import prepare

    data_dir = tmp_path_factory.mktemp(f"tfds_{dataset}")
    prepare(dataset, str(data_dir))
    return str(data_dir)


def constant_rate_trials(
    learning_rates, budget: int, eval_every: int, momentum: float = 0.9, seed: int = 0
) -> list[dict]:
    """Trials as tuning.search makes them, one per learning rate, without decay or label smoothing;
    trial i has id i and seed `seed` + i."""
    return [
        dict(
            trial_id=i,
            learning_rate=lr,
            momentum=momentum,
            decay_steps=0,
            end_factor=1.0,
            label_smoothing=0.0,
            seed=seed + i,
            step_budget=budget,
            eval_every=eval_every,
        )
        for i, lr in enumerate(learning_rates)
    ]


def signalled_study(study: str, trials: int, trials_per_job: int, **overrides) -> dict:
    """The tiny study cut to sgd at batch sizes 32 and 512, its trials long enough to be signalled
    mid-trial and trained one after another (trials_per_graph 1), checkpointed often."""
    return {
        "study": study,
        "trials": trials,
        "trials_per_job": trials_per_job,
        "trials_per_graph": 1,
        "checkpoint_minutes": 0.002,
        "stop_at_target": False,  # every trial trains its whole budget: time to stop it mid-trial
        "workloads": {
            "mnist1d_mlp": {"batch_sizes": [32, 512], "optimizers": ["sgd"], "step_budget": SIGNALLED_STEP_BUDGET}
        },
        **overrides,
    }


@pytest.fixture(scope="session")
def mnist1d_data_dir(tmp_path_factory):
    """MNIST-1D prepared once per test session."""
    return prepared(tmp_path_factory, "mnist1d")


@pytest.fixture(scope="session")
def prepared_data_dir(mnist1d_data_dir):
    """mnist1d_data_dir with the flag file that tells Snakemake's prepare_data it is done."""
    Path(mnist1d_data_dir, "mnist1d.prepared").touch()
    return mnist1d_data_dir


@pytest.fixture(scope="session")
def synthetic_text_data_dir(tmp_path_factory):
    """The built-in generated text corpus, prepared once per test session."""
    return prepared(tmp_path_factory, "synthetic_text")


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
            raise AssertionError(
                f"snakemake ended (rc {process.returncode}) before "
                f"{what}:\n{(out or '')[-3000:]}\n{(err or '')[-2000:]}"
            )
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no {what} after {timeout}s")
