"""Mid-trial checkpoints: a tune job stopped by a signal checkpoints its trials in flight, and the
rerun resumes them at their saved step with exactly the curve of an uninterrupted run.

Real tune jobs in this process (float64, one trial per graph), real signals sent to it, real
tf.train.Checkpoint files; the Snakemake-level kills (SIGTERM, SIGKILL) are in test_interruption.py.
"""

import json
import os
import re
import signal
import threading
from pathlib import Path

import pandas as pd
import pytest

from batch_science.config import Study
from batch_science.tuning.tune_job import run_tune_job
from conftest import SIGNALLED_STEP_BUDGET

pytestmark = pytest.mark.slow

STUDY = Study("mnist1d_mlp", "nesterov", 32)  # 5000 steps a trial, evaluated every 20; velocity and decay to restore
ADAM_STUDY = Study("mnist1d_mlp", "adam", 32)  # two moment estimates and the bias correction's step to restore
ADAM_SPACE = {
    "learning_rate": {"min": 1e-3, "max": 1e-2, "scale": "log"},
    "beta1": {"min": 0.5, "max": 0.95, "scale": "reverse_log"},
    "beta2": {"min": 0.9, "max": 0.999, "scale": "reverse_log"},
    "epsilon": {"min": 1e-8, "max": 1e-4, "scale": "log"},
    "schedule": "linear_decay",
    "decay_fraction": {"min": 0.5, "max": 1.0},
    "end_factor": {"min": 0.01, "max": 0.1, "scale": "log"},
}


@pytest.fixture(scope="module")
def config(tiny_config, mnist1d_data_dir):
    workloads = {name: dict(w, step_budget=SIGNALLED_STEP_BUDGET) for name, w in tiny_config["workloads"].items()}
    return dict(
        tiny_config,
        search_spaces={**tiny_config["search_spaces"], "adam": ADAM_SPACE},
        data_dir=mnist1d_data_dir,
        precision="float64",
        trials_per_graph=1,
        checkpoint_minutes=0.002,
        stop_at_target=False,
        workloads=workloads,
    )  # every trial trains its 5000 steps: time to stop it mid-trial


def outputs(folder: Path) -> dict:
    return dict(
        trials_out=str(folder / "trials.parquet"),
        curves_out=str(folder / "curves.parquet"),
        partial_dir=str(folder / "partial"),
    )


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    run_tune_job(config, STUDY, 0, **outputs(folder))
    return folder


def saved_states(partial_dir: str) -> list[Path]:
    return sorted(Path(partial_dir).glob("trial_*.checkpoint/step_*/state.json"))


def saved_mid_trial(partial_dir: str) -> bool:
    return any(json.loads(path.read_text())["step"] > 0 for path in saved_states(partial_dir))


def run_until_checkpointed_then_signal(config, folder: Path, signum: int, study: Study = STUDY):
    """Run the tune job; once a periodic checkpoint past step 0 is on disk, send `signum` to this process."""
    paths = outputs(folder)
    done = threading.Event()

    def send_signal_once_checkpointed():
        while not done.is_set():
            if saved_mid_trial(paths["partial_dir"]):
                os.kill(os.getpid(), signum)
                return
            done.wait(0.02)

    previous = signal.signal(signum, lambda *args: None)  # a signal landing after the job is harmless
    watcher = threading.Thread(target=send_signal_once_checkpointed)
    watcher.start()
    try:
        with pytest.raises(SystemExit) as stopped:
            run_tune_job(config, study, 0, **paths)
    finally:
        done.set()
        watcher.join()
        signal.signal(signum, previous)
    return stopped.value.code


def assert_tables_equal(folder: Path, reference: Path) -> None:
    for table in ("trials.parquet", "curves.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(folder / table), pd.read_parquet(reference / table), check_exact=True, obj=table
        )


def test_sigusr1_checkpoints_trials_in_flight_and_the_rerun_resumes_them_exactly(config, reference, tmp_path, caplog):
    caplog.set_level("INFO")
    assert run_until_checkpointed_then_signal(config, tmp_path, signal.SIGUSR1) == 128 + signal.SIGUSR1
    stopped = re.search(r"stopped by SIGUSR1 .* 1 checkpointed mid-trial \(trial (\d+) at step (\d+)\)", caplog.text)
    assert stopped, caplog.text
    trial_id, step = map(int, stopped.groups())
    (state,) = saved_states(outputs(tmp_path)["partial_dir"])  # older saves were removed
    assert json.loads(state.read_text())["step"] == step > 0

    caplog.clear()
    run_tune_job(config, STUDY, 0, **outputs(tmp_path))
    assert f"trial {trial_id} resumed at step {step} of 5000" in caplog.text
    assert not list(Path(outputs(tmp_path)["partial_dir"]).glob("*.checkpoint")), (
        "a finished trial's checkpoint is deleted"
    )
    curves = pd.read_parquet(tmp_path / "curves.parquet")
    assert not curves.duplicated(["trial_id", "step"]).any()
    assert_tables_equal(tmp_path, reference)


def test_corrupt_or_half_written_checkpoint_is_ignored_and_the_trial_retrained(config, reference, tmp_path, caplog):
    run_until_checkpointed_then_signal(config, tmp_path, signal.SIGTERM)
    (state,) = saved_states(outputs(tmp_path)["partial_dir"])
    data = next(state.parent.glob("tensors.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # truncated, as by a full disk
    half_written = state.parent.parent / "step_999999999"  # a later save cut short: no state.json
    half_written.mkdir()
    (half_written / "tensors.index").write_bytes(b"")

    caplog.clear()
    caplog.set_level("INFO")
    run_tune_job(config, STUDY, 0, **outputs(tmp_path))
    assert f"{half_written}: a checkpoint cut short" in caplog.text
    assert f"{state.parent}: unreadable checkpoint" in caplog.text
    assert "resumed at step" not in caplog.text
    assert not state.parent.parent.exists()
    assert_tables_equal(tmp_path, reference)


def test_adam_resumes_exactly_from_its_saved_moment_estimates(config, tmp_path, caplog):
    """float64 tables of an Adam study stopped mid-trial and rerun equal those of an uninterrupted run."""
    reference = tmp_path / "uninterrupted"
    run_tune_job(config, ADAM_STUDY, 0, **outputs(reference))
    interrupted = tmp_path / "interrupted"
    caplog.set_level("INFO")
    assert run_until_checkpointed_then_signal(config, interrupted, signal.SIGUSR1, ADAM_STUDY) == 128 + signal.SIGUSR1
    assert re.search(r"1 checkpointed mid-trial \(trial \d+ at step [1-9]\d*\)", caplog.text), caplog.text
    caplog.clear()
    run_tune_job(config, ADAM_STUDY, 0, **outputs(interrupted))
    assert "resumed at step" in caplog.text
    assert_tables_equal(interrupted, reference)
    trials = pd.read_parquet(reference / "trials.parquet")
    assert {"beta1", "beta2", "epsilon"} <= set(trials.columns) and (trials["momentum"] == 0).all()
