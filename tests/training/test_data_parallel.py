"""A trial trained data-parallel on two devices gives the same curve and steps to result as the
one-device engine with the same global batch and seed: MirroredStrategy over two logical CPUs, in
a study run by Snakemake, and MultiWorkerMirroredStrategy over two worker processes that find each
other as SLURM tasks do (SlurmClusterResolver reading SLURM_* variables)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from batch_science.tuning.study_config import check_study
from conftest import TINY_CONFIG, run_snakemake

pytestmark = pytest.mark.slow

# In a fresh process: logical devices must be set up before TensorFlow starts, and this test
# session's TensorFlow may already be running.
TRAIN_ON_ONE_AND_TWO_DEVICES = r"""
import json, sys
from batch_science.training import data_parallel
from batch_science.training.device import use_logical_cpus

devices = use_logical_cpus(2)
from batch_science.data.load import load, prepare
from batch_science.training.engine import Engine
from batch_science.trials import Target
from batch_science.models.registry import get_model

arrays = load({"name": "mnist1d"}, sys.argv[1])
trial = dict(trial_id=0, learning_rate=0.05, momentum=0.9, decay_steps=120, end_factor=0.1, label_smoothing=0.1,
             seed=7, step_budget=160, eval_every=20)
target = Target("error", 0.70)
strategy = data_parallel.strategy_for(devices)
results = {"replicas": strategy.num_replicas_in_sync}
adam = dict(trial, learning_rate=0.005, momentum=0.0, beta1=0.8, beta2=0.99, epsilon=1e-6)
for precision, optimizer, run in (("float64", "nesterov", trial), ("float32", "sgd", trial), ("float64", "adam", adam)):
    engine = Engine(get_model({"name": "mlp", "hidden": [32]}), arrays, optimizer, batch_size=64, precision=precision)
    one = engine.run([run], target, group_size=1)[0]
    two = data_parallel.DataParallelTrial(engine, strategy).run(run, target)
    key = precision if optimizer != "adam" else "float64 adam"
    results[key] = {name: [o.status, o.steps_to_result, o.curve] for name, o in (("one", one), ("two", two))}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def one_and_two_devices(mnist1d_data_dir) -> dict:
    """Nesterov and Adam in float64 and SGD in float32, each on the engine and on two mirrored replicas."""
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_ON_ONE_AND_TWO_DEVICES, mnist1d_data_dir],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("precision, tolerance", [("float64", 1e-9), ("float32", 1e-4), ("float64 adam", 1e-9)])
def test_two_devices_give_the_one_device_result(one_and_two_devices, precision, tolerance):
    assert one_and_two_devices["replicas"] == 2
    result = one_and_two_devices[precision]
    (status_one, steps_one, curve_one), (status_two, steps_two, curve_two) = result["one"], result["two"]
    assert (status_two, steps_two) == (status_one, steps_one)
    assert [row["step"] for row in curve_two] == [row["step"] for row in curve_one]
    assert len(curve_one) > 2, "the comparison should span several evaluations"
    for row_one, row_two in zip(curve_one, curve_two):
        for key in ("val_cross_entropy", "val_error"):
            assert row_two[key] == pytest.approx(row_one[key], rel=tolerance, abs=tolerance), (row_one["step"], key)


# The tiny study cut to one optimizer in float64, where two devices and one give the same result
# up to summation order: batch size 256 is the large batch trained data-parallel.
LARGE_BATCH = 256
STUDY_PATH = f"mnist1d_mlp/nesterov/b{LARGE_BATCH}"
ONE_STUDY = {
    "precision": "float64",
    "trials": 4,
    "trials_per_job": 4,
    "workloads": {"mnist1d_mlp": {"optimizers": ["nesterov"]}},
}


def study_overrides(folder: Path, name: str, **overrides) -> Path:
    """A config file of overrides on top of the tiny study (Snakemake merges --configfile files)."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**ONE_STUDY, "study": name, **overrides}))
    return path


def run_study(workdir: Path, overrides: Path, study: str) -> Path:
    # The target first: --configfile takes every argument after it.
    run_snakemake(
        workdir,
        f"results/{study}/steps_to_result.csv",
        "--cores",
        "2",
        "--configfile",
        str(TINY_CONFIG),
        str(overrides),
    )
    return workdir / "results" / study


@pytest.fixture(scope="module")
def one_device_study(tmp_path_factory, prepared_data_dir) -> Path:
    """The large batch size's study on one device (the engine), as if data_parallel were off."""
    workdir = tmp_path_factory.mktemp("one_device")
    overrides = study_overrides(
        workdir,
        "one_device",
        data_dir=prepared_data_dir,
        workloads={"mnist1d_mlp": {"batch_sizes": [LARGE_BATCH], "optimizers": ["nesterov"]}},
    )
    return run_study(workdir, overrides, "one_device")


def assert_same_trials(trials: pd.DataFrame, reference: pd.DataFrame, tolerance: float = 1e-9) -> None:
    keys = ["trial_id", "status", "steps_to_result", "best_step", "final_step"]
    trials, reference = (t.sort_values("trial_id").reset_index(drop=True) for t in (trials, reference))
    pd.testing.assert_frame_equal(trials[keys], reference[keys])
    assert (reference["status"] == "reached").any(), "the comparison should include trials that reach the target"
    assert trials["best_val_metric"].to_numpy() == pytest.approx(
        reference["best_val_metric"].to_numpy(), rel=tolerance, abs=tolerance
    )


def test_large_batch_study_trains_data_parallel_with_the_one_device_result(
    tmp_path, prepared_data_dir, one_device_study
):
    overrides = study_overrides(
        tmp_path,
        "data_parallel",
        data_dir=prepared_data_dir,
        data_parallel={"min_batch_size": LARGE_BATCH, "devices": 2},
    )
    results = run_study(tmp_path, overrides, "data_parallel")

    logs = tmp_path / "logs" / "tune" / "data_parallel" / "mnist1d_mlp" / "nesterov"
    assert "data-parallel over 2 devices" in (logs / f"b{LARGE_BATCH}" / "shard0.log").read_text()
    small_batch_log = (logs / "b32" / "shard0.log").read_text()
    assert "on one device (engine)" in small_batch_log and "data-parallel" not in small_batch_log

    steps = pd.read_csv(results / "steps_to_result.csv").set_index("batch_size")
    reference = pd.read_csv(one_device_study / "steps_to_result.csv").set_index("batch_size")
    assert (
        steps.loc[LARGE_BATCH, ["steps_to_result", "best_trial"]].tolist()
        == reference.loc[LARGE_BATCH, ["steps_to_result", "best_trial"]].tolist()
    )
    trials = pd.read_parquet(results / "trials.parquet")
    assert_same_trials(
        trials[trials["batch_size"] == LARGE_BATCH], pd.read_parquet(one_device_study / "trials.parquet")
    )
    curves = pd.read_parquet(results / "curves.parquet")
    curves = curves[curves["batch_size"] == LARGE_BATCH].sort_values(["trial_id", "step"])
    reference_curves = pd.read_parquet(one_device_study / "curves.parquet").sort_values(["trial_id", "step"])
    assert curves["step"].tolist() == reference_curves["step"].tolist()
    assert curves["val_cross_entropy"].to_numpy() == pytest.approx(
        reference_curves["val_cross_entropy"].to_numpy(), rel=1e-9
    )


def free_port_pair() -> int:
    """A port p with p and p + 1 free: the two workers' addresses on this host."""
    while True:
        with socket.socket() as first:
            first.bind(("localhost", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("localhost", port + 1))
                except OSError:
                    continue
        return port


def test_two_worker_processes_give_the_one_device_result(tmp_path, prepared_data_dir, one_device_study):
    """The worker of a multi-node tune job (what srun starts on each node), run twice on this host."""
    with open(TINY_CONFIG) as f:
        config = yaml.safe_load(f)
    config.update({**ONE_STUDY, "workloads": config["workloads"]}, study="two_workers", data_dir=prepared_data_dir)
    config["workloads"]["mnist1d_mlp"]["optimizers"] = ["nesterov"]
    config["data_parallel"] = {"min_batch_size": LARGE_BATCH, "nodes": 2, "devices": 1, "port": free_port_pair()}
    partial_dir, out = tmp_path / "partial", tmp_path / "out"
    job = {
        "config": check_study(config),
        "study": {"workload": "mnist1d_mlp", "optimizer": "nesterov", "batch_size": LARGE_BATCH},
        "shard": 0,
        "trials_out": str(out / "trials.parquet"),
        "curves_out": str(out / "curves.parquet"),
        "partial_dir": str(partial_dir),
    }
    job_path = tmp_path / "job.json"
    job_path.write_text(json.dumps(job))
    # Two SLURM tasks on one node, as srun would describe them to each.
    slurm = {"SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "localhost", "SLURM_STEP_TASKS_PER_NODE": "2"}
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "batch_science.tuning.launcher", str(job_path)],
            env={**environment, **slurm, "SLURM_PROCID": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    logs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], "\n".join(log[-3000:] for log in logs)
    assert all("data-parallel over 2 devices" in log for log in logs), logs[0][-3000:]

    assert_same_trials(pd.read_parquet(out / "trials.parquet"), pd.read_parquet(one_device_study / "trials.parquet"))
    assert len(list(partial_dir.glob("trial_*.parquet"))) == 4
    assert "done in" in logs[0] and "done in" not in logs[1], (
        "the first worker writes the tables, the other only trains"
    )
