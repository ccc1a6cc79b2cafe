"""A tune job killed mid-way (SIGTERM, then SIGKILL) loses no finished trial and retrains none.

Real Snakemake runs of a small study, one tune job at a time and one trial per graph, so a trial
finishes every few seconds: each run is killed right after a new trial's partial file appears,
then rerun. The finished trials' files must survive untouched, each rerun must train only the
rest, and the final tables must equal those of an uninterrupted run.
"""
import os
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from batch_science.tune import partial_path
from conftest import REPO, SNAKEMAKE, TINY_CONFIG, run_snakemake, wait_for

pytestmark = pytest.mark.slow

STUDY = "interrupt"
KILLED_STUDY = "mnist1d_mlp/sgd/b32"  # 500 steps a trial: the slowest, so the kill lands mid-job
FINAL_TABLES = ["trials.parquet", "curves.parquet", "steps_to_result.csv", "fits.csv"]


def write_study_config(folder: Path, data_dir: str) -> Path:
    """The tiny study cut to one optimizer and two batch sizes: one tune job of 3 trials per study."""
    overrides = {
        "study": STUDY,
        "data_dir": data_dir,
        "trials": 3,
        "trials_per_job": 3,
        "trials_per_graph": 1,  # trials train one after another, each finishing on its own
        "workloads": {"mnist1d_mlp": {"batch_sizes": [32, 512], "optimizers": ["sgd"]}},
    }
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


def run_and_kill_after_trial(workdir: Path, config_path: Path, trial_id: int, signum: int) -> subprocess.CompletedProcess:
    """Run the study; once trial `trial_id` of the killed study is on disk, send `signum` to its tune job."""
    command = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *snakemake_args(config_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = partial_path(workdir / "results" / STUDY / "partial" / KILLED_STUDY, trial_id)
    wait_for(partial.exists, f"a partial file {partial.name}", process)
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


def test_killed_tune_job_keeps_finished_trials_and_reruns_only_the_rest(tmp_path, prepared_data_dir):
    config_path = write_study_config(tmp_path, prepared_data_dir)
    reference, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    run_snakemake(reference, *snakemake_args(config_path))

    # 1. SIGTERM once trial 0 is written: the job stops cleanly, saying what it kept.
    first = run_and_kill_after_trial(interrupted, config_path, 0, signal.SIGTERM)
    assert first.returncode != 0, "the killed job should have failed the run"
    kept = partial_files(interrupted)
    assert 1 <= len(kept) < 3, f"the kill should land mid-job, found {[p.name for p in kept]}"
    assert "stopped by SIGTERM" in tune_log(interrupted)
    before = snapshot(kept)

    # 2. SIGKILL (no chance to clean up) once the rerun has written one more trial.
    second = run_and_kill_after_trial(interrupted, config_path, len(kept), signal.SIGKILL)
    assert second.returncode != 0
    assert f"3 trials, {len(kept)} already finished, {3 - len(kept)} to train" in tune_log(interrupted)
    assert snapshot(kept) == before, "a finished trial was retrained or rewritten"
    kept = partial_files(interrupted)
    before = snapshot(kept)
    # A writer killed mid-write leaves a temporary file; the rerun must clear it, not trip on it.
    stale = kept[0].parent / f".{partial_path('', 2).name}.killed.tmp"
    stale.write_bytes(b"half a parquet file")

    # 3. The last rerun finishes the study.
    run_snakemake(interrupted, *snakemake_args(config_path))
    assert f"3 trials, {len(kept)} already finished, {3 - len(kept)} to train" in tune_log(interrupted)
    assert snapshot(kept) == {name: value for name, value in snapshot(partial_files(interrupted)).items() if name in before}
    assert not stale.exists()

    for table in FINAL_TABLES:
        expected, actual = (folder / "results" / STUDY / table for folder in (reference, interrupted))
        read = pd.read_csv if table.endswith(".csv") else pd.read_parquet
        pd.testing.assert_frame_equal(read(actual), read(expected), check_exact=True, obj=table)
