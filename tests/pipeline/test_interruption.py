"""A tune job killed mid-way (SIGTERM, then SIGKILL) loses no finished trial and retrains none,
and resumes the trial it was in the middle of from its checkpoint.

Real Snakemake runs of a small study, one tune job at a time and one trial per graph, so a trial
finishes every few seconds, checkpointed every fraction of a second: each run is killed once one
trial is finished and the next is checkpointed past step 0, then rerun. The finished trials' files
must survive untouched, each rerun must train only the rest and resume the interrupted trial at
its saved step, and the final tables must equal those of an uninterrupted run.
"""

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from batch_science.tables import CURVE_KEYS
from batch_science.tables import partial_trial as partial_path
from batch_science.tables import trial_checkpoint as checkpoint_dir
from conftest import REPO, SNAKEMAKE, TINY_CONFIG, run_snakemake, signalled_study, wait_for

pytestmark = pytest.mark.slow

STUDY = "interrupt"
KILLED_STUDY = "mnist1d_mlp/sgd/b32"  # 5000 steps a trial: the slowest, so the kill lands mid-job
FINAL_TABLES = ["trials.parquet", "curves.parquet", "steps_to_result.csv", "fits.csv"]


def write_study_config(folder: Path, data_dir: str) -> Path:
    """The tiny study cut to one optimizer and two batch sizes: one tune job of 3 trials per study."""
    # One tune job of 3 trials per study, in float64 so a rerun's tables equal the first run's.
    overrides = signalled_study(STUDY, 3, 3, data_dir=data_dir, precision="float64")
    path = folder / "interrupt.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


def snakemake_args(config_path: Path) -> list[str]:
    # The target first: --configfile takes every argument after it.
    return [f"results/{STUDY}/fits.csv", "--cores", "1", "--configfile", str(TINY_CONFIG), str(config_path)]


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (children of children included)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended while being read
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def tune_process(snakemake_pid: int) -> int | None:
    """The Python process running the tune script, started by our Snakemake."""
    for pid in descendants(snakemake_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if "python" in os.path.basename(argv[0].decode()) and any(a.endswith(b".tune.py") for a in argv):
            return pid
    return None


def checkpoint_step(workdir: Path, trial_id: int) -> int | None:
    """The step of the trial's newest complete checkpoint, if any."""
    steps = []
    for state in checkpoint_dir(workdir / "results" / STUDY / "partial" / KILLED_STUDY, trial_id).glob(
        "step_*/state.json"
    ):
        try:
            steps.append(json.loads(state.read_text())["step"])
        except OSError:  # removed by the job meanwhile: a newer save exists
            continue
    return max(steps, default=None)


def run_and_kill_mid_trial(workdir: Path, config_path: Path, trial_id: int, signum: int) -> subprocess.CompletedProcess:
    """Run the study; once trial `trial_id` of the killed study is on disk and the next one is
    checkpointed past step 0, send `signum` to its tune job."""
    command = [
        *SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *snakemake_args(config_path),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = partial_path(workdir / "results" / STUDY / "partial" / KILLED_STUDY, trial_id)
    wait_for(partial.exists, f"a partial file {partial.name}", process)
    wait_for(
        lambda: (checkpoint_step(workdir, trial_id + 1) or 0) > 0, f"a checkpoint of trial {trial_id + 1}", process
    )
    pid = wait_for(lambda: tune_process(process.pid), "a tune process", process)
    os.kill(pid, signum)
    out, err = process.communicate(timeout=600)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def snapshot(paths) -> dict:
    """Content and modification time of each file: a retrained trial would change both."""
    return {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in paths}


def partial_files(workdir: Path) -> list[Path]:
    return sorted((workdir / "results" / STUDY / "partial" / KILLED_STUDY).glob("trial_*.parquet"))


def tune_log(workdir: Path) -> str:
    return (workdir / "logs" / "tune" / STUDY / KILLED_STUDY / "shard0.log").read_text()


def test_killed_tune_job_keeps_finished_trials_and_resumes_the_interrupted_one(tmp_path, prepared_data_dir):
    config_path = write_study_config(tmp_path, prepared_data_dir)
    reference, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    run_snakemake(reference, *snakemake_args(config_path))

    # 1. SIGTERM while trial 1 is in flight: the job checkpoints it, stops cleanly and says so.
    first = run_and_kill_mid_trial(interrupted, config_path, 0, signal.SIGTERM)
    assert first.returncode != 0, "the killed job should have failed the run"
    kept = partial_files(interrupted)
    assert [p.name for p in kept] == [partial_path("", 0).name]
    stopped = re.search(
        r"stopped by SIGTERM .* 1 checkpointed mid-trial \(trial 1 at step (\d+)\)", tune_log(interrupted)
    )
    assert stopped, tune_log(interrupted)
    step = int(stopped.group(1))
    assert checkpoint_step(interrupted, 1) == step > 0
    before = snapshot(kept)

    # 2. The rerun resumes trial 1 there; SIGKILL (no chance to save) once trial 2 has a periodic checkpoint.
    second = run_and_kill_mid_trial(interrupted, config_path, 1, signal.SIGKILL)
    assert second.returncode != 0
    assert "3 trials, 1 already finished, 2 to train" in tune_log(interrupted)
    assert f"trial 1 resumed at step {step} of 5000" in tune_log(interrupted)
    assert snapshot(kept) == before, "a finished trial was retrained or rewritten"
    assert not checkpoint_dir(kept[0].parent, 1).exists(), "a finished trial's checkpoint is deleted"
    step = checkpoint_step(interrupted, 2)
    kept = partial_files(interrupted)
    before = snapshot(kept)
    # A writer killed mid-write leaves a temporary file or a checkpoint without its state.json;
    # the rerun must clear them, not trip on them.
    stale = kept[0].parent / f".{partial_path('', 2).name}.killed.tmp"
    stale.write_bytes(b"half a parquet file")
    half_saved = checkpoint_dir(kept[0].parent, 2) / "step_999999999"
    half_saved.mkdir()

    # 3. The last rerun resumes trial 2 from its last periodic checkpoint and finishes the study.
    run_snakemake(interrupted, *snakemake_args(config_path))
    assert "3 trials, 2 already finished, 1 to train" in tune_log(interrupted)
    assert f"trial 2 resumed at step {step} of 5000" in tune_log(interrupted)
    assert snapshot(kept) == {
        name: value for name, value in snapshot(partial_files(interrupted)).items() if name in before
    }
    assert not stale.exists() and not half_saved.exists()
    assert not list(kept[0].parent.glob("*.checkpoint")), "checkpoints of finished trials are deleted"

    curves = pd.read_parquet(interrupted / "results" / STUDY / "curves.parquet")
    assert not curves.duplicated(CURVE_KEYS + ["step"]).any(), "a resumed trial repeated evaluations"
    for table in FINAL_TABLES:
        expected, actual = (folder / "results" / STUDY / table for folder in (reference, interrupted))
        read = pd.read_csv if table.endswith(".csv") else pd.read_parquet
        pd.testing.assert_frame_equal(read(actual), read(expected), check_exact=True, obj=table)
