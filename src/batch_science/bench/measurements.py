"""The measurements of `make bench` (bench/__main__.py runs them): the engine against the plain Keras
loop, the machine's matmul peak, the cost of a study.

Every figure is measured in this one run, on this machine, under the same load: ratios are only
meaningful within a run. Each measurement runs in its own fresh process (TensorFlow's thread
counts are fixed per process), so strategies do not share caches, compiled graphs or threads.

Throughput is trial-steps per second of steady training with evaluation at the workload's
interval included; start-up (imports, data, graph building and compilation) is reported apart,
except in the sweep rows, which time a whole fresh job. Achieved GFLOP/s counts training
(3x the forward pass per example) and evaluation FLOPs; its fraction is of the float32 matmul
throughput measured here with all cores. Where TensorFlow sees a GPU, everything runs on it (and
the one-job-per-core strategies are left out).

Writes results/bench/engine.csv (one row per batch size and strategy), study.csv (where the
time of the default study goes, and Snakemake's per-job overhead), dag.csv (dry-run time
against the number of jobs), paper_models.csv (the paper's models on mock data, the engine
against the same network in Keras; bench/paper_workloads.py) and pruning.csv (trial-steps of
studies with and without pruning).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batch_science.config import Study, run_settings, shard_count, steps_for, studies
from batch_science.data.load import load
from batch_science.models.registry import get_model
from batch_science.tables import results_dir, shard_table, tune_log
from batch_science.training.device import configure_tensorflow
from batch_science.training.engine import Engine, batch_norm_sample_size
from batch_science.trials import Target
from batch_science.tuning.search import study_trials

# Children inherit it: TensorFlow's C++ start-up notes would bury the table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[3]
BATCH_SIZES = (16, 256, 4096)
# Metaparameters of the throughput runs: a stable setting, so no trial diverges and leaves its slot.
STEADY_TRIAL = {"learning_rate": 0.02, "momentum": 0.9, "decay_steps": 0, "end_factor": 1.0, "label_smoothing": 0.0}
# Trial-steps each throughput run trains: a few seconds per measurement on a 2-core machine. Each
# trial trains the study's own budget at its batch size, so compiled calls hold as many intervals
# as in the study, and the graph's slots are refilled as its trials end, as in the study.
ENGINE_TRIAL_STEPS = {16: 96_000, 256: 12_000, 4096: 2_000}
KERAS_STEPS = {16: 400, 256: 200, 4096: 30}
KERAS_TRIALS = 2


# -- measurements, each run in a fresh process ---------------------------------------------------
def _start_tensorflow(threads: int | None):
    configure_tensorflow(threads)
    import tensorflow as tf

    return tf


def _workload(config: dict):
    """The default (first) workload of the config: its name, model, data and target."""
    name, workload = next(iter(config["workloads"].items()))
    return (
        name,
        workload,
        get_model(workload["model"], config.get("config_dir")),
        load(workload["dataset"], config["data_dir"], config.get("config_dir")),
    )


def keras_mlp(hidden, inputs: int = 40, classes: int = 10):
    """The default workload's MLP as a Keras model, for the engine's Keras-model path (`with_keras_mlp`)."""
    import keras

    layers = [keras.layers.Dense(width, activation="relu", kernel_initializer="he_normal") for width in hidden]
    return keras.Sequential([keras.Input((inputs,)), *layers, keras.layers.Dense(classes)])


def with_keras_mlp(config: dict) -> dict:
    """The config with its first workload's MLP given as a Keras model by import path: the engine's
    Keras-model path (models/keras_model.py) on the network the native rows train."""
    name, workload = next(iter(config["workloads"].items()))
    model = {"keras": f"{__name__}:keras_mlp", "hidden": list(workload["model"]["hidden"])}
    return {**config, "workloads": {**config["workloads"], name: {**workload, "model": model}}}


def accelerators() -> dict:
    """The GPUs TensorFlow sees here: where there is one, every measurement runs on it."""
    tf = _start_tensorflow(None)
    return {"gpus": [device.name for device in tf.config.list_physical_devices("GPU")]}


def matmul_peak(threads: int | None, size: int = 2048, repeats: int = 20) -> dict:
    """Float32 GFLOP/s of a large square matrix multiply, best of several repetitions."""
    tf = _start_tensorflow(threads)
    a, b = tf.random.normal([size, size]), tf.random.normal([size, size])
    multiply = tf.function(lambda a, b: tf.matmul(a, b), jit_compile=True)
    multiply(a, b).numpy()
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        multiply(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return {"gflops": 2 * size**3 / best / 1e9}


def keras_fit(config: dict, batch_size: int, threads: int | None) -> dict:
    """What a user would write: a Keras model per trial, model.fit with validation and an early stop."""
    _start_tensorflow(threads)
    import keras

    _, workload, model_spec, arrays = _workload(config)
    target = Target(**workload["target"])
    eval_every = steps_for(workload["eval_every"], batch_size)
    steps = KERAS_STEPS[batch_size]

    class EvaluateAndStopAtTarget(keras.callbacks.Callback):
        """Validation every `eval_every` steps; stop once the target is met or the steps are done."""

        def __init__(self):
            super().__init__()
            self.steps, self.first_step_at = 0, None

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.first_step_at is None:
                self.first_step_at = time.perf_counter()
            if self.steps % eval_every == 0:
                loss, accuracy = self.model.evaluate(
                    arrays.x_validation, arrays.y_validation, batch_size=len(arrays.x_validation), verbose=0
                )
                metric = 1 - accuracy if target.metric == "error" else loss
                if target.met(metric) or self.steps >= steps:
                    self.model.stop_training = True

    timed_steps, timed_s, startup_s = 0, 0.0, 0.0
    for trial in range(KERAS_TRIALS):
        keras.utils.set_random_seed(trial)
        started = time.perf_counter()
        layers = [keras.layers.Input(arrays.x_train.shape[1:]), keras.layers.Flatten()]
        layers += [
            keras.layers.Dense(width, activation="relu", kernel_initializer="he_normal") for width in model_spec.hidden
        ]
        model = keras.Sequential(layers + [keras.layers.Dense(arrays.num_classes)])
        model.compile(
            optimizer=keras.optimizers.SGD(STEADY_TRIAL["learning_rate"], momentum=STEADY_TRIAL["momentum"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        callback = EvaluateAndStopAtTarget()
        # Arrays in memory, shuffled each epoch by Keras; the whole validation set in one batch, as
        # the engine evaluates it (a smaller one would only make Keras slower).
        epochs = math.ceil(steps * batch_size / len(arrays.x_train))
        model.fit(arrays.x_train, arrays.y_train, batch_size=batch_size, epochs=epochs, callbacks=[callback], verbose=0)
        finished = time.perf_counter()
        startup_s += callback.first_step_at - started
        timed_steps += callback.steps - 1
        timed_s += finished - callback.first_step_at
    return {
        "trials": KERAS_TRIALS,
        "trial_steps": timed_steps,
        "seconds": timed_s,
        "startup_s": startup_s / KERAS_TRIALS,
        "eval_every": eval_every,
    }


def engine_steady(config: dict, batch_size: int, threads: int | None, barrier=None, trials: int | None = None) -> dict:
    """The engine's steady throughput: a warm-up run compiles, a second run of the same shape is timed."""
    _start_tensorflow(threads)
    _, workload, model, arrays = _workload(config)
    eval_every = steps_for(workload["eval_every"], batch_size)
    budget = steps_for(workload["step_budget"], batch_size)
    engine = Engine(model, arrays, "momentum", batch_size, config["precision"])
    slots = trials or engine.group_size_for(1 << 20)
    rounds = max(1, math.ceil(ENGINE_TRIAL_STEPS[batch_size] / (slots * budget)))

    def run(seed_base: int, n_trials: int, n_steps: int) -> float:
        batch = [
            {**STEADY_TRIAL, "seed": seed_base + i, "step_budget": n_steps, "eval_every": eval_every}
            for i in range(n_trials)
        ]
        started = time.perf_counter()
        engine.run(batch, Target(**workload["target"]), stop_at_target=False, group_size=slots)
        return time.perf_counter() - started

    warmup_s = run(10_000, slots, eval_every)
    if barrier is not None:
        barrier.wait()  # processes sharing the machine time the same seconds
    seconds = run(0, slots * rounds, budget)
    # Evaluation's share: the same graph shape evaluated alone, as often as the run evaluates.
    import numpy as np

    weights = [
        engine.tf.constant(
            np.stack([model.init(i, engine.input_shape, engine.num_classes)[k] for i in range(slots)]), engine.dtype
        )
        for k in range(len(model.init(0, engine.input_shape, engine.num_classes)))
    ]
    engine.evaluate(weights)[0].numpy()
    started = time.perf_counter()
    for _ in range(5):
        engine.evaluate(weights)[0].numpy()
    eval_s = (time.perf_counter() - started) / 5 * rounds * (budget // eval_every + 1)
    return {
        "trials": slots * rounds,
        "trial_steps": slots * rounds * budget,
        "seconds": seconds,
        "startup_s": warmup_s,
        "eval_fraction": min(1.0, eval_s / seconds),
        "eval_every": eval_every,
        "trials_per_graph": slots,
    }


def engine_sweep(
    config: dict,
    batch_size: int,
    threads: int | None,
    n_trials: int,
    group_size: int | None,
    process_start: float,
    shard: tuple[int, int] = (0, 1),
) -> dict:
    """A real sweep, as a tune job runs it: the config's search space, budget and early stop, start-up included.

    `shard` = (k, n): this process runs the k-th of n contiguous parts of the sweep's trials, as
    one of n tune jobs would.
    """
    started = time.perf_counter()
    _start_tensorflow(threads)
    imported = time.perf_counter()
    name, workload, model, arrays = _workload(config)
    study = Study(name, "momentum", batch_size)
    part, parts = shard
    trials = study_trials(config, study, range(part * n_trials // parts, (part + 1) * n_trials // parts))
    engine = Engine(model, arrays, study.optimizer, batch_size, config["precision"])
    slots = engine.slots_for(len(trials), group_size)  # as a tune job decides it
    ready = time.perf_counter()
    outcomes = engine.run(trials, **run_settings(config, name), group_size=slots)
    finished = time.perf_counter()
    stats = engine.stats
    return {
        "trials": len(trials),
        "trial_steps": stats["trial_steps"],
        "slot_steps": stats["slot_steps"],
        "seconds": finished - process_start,
        "import_s": imported - process_start,
        "setup_s": ready - imported,
        "python_start_s": started - process_start,
        "first_call_s": stats["first_call_s"],
        "train_and_eval_s": stats["call_s"],
        "host_s": stats["host_s"],
        "graph_sizes": stats["graph_sizes"],
        "slot_utilisation": stats["trial_steps"] / max(1, stats["slot_steps"]),
        "trials_per_graph": slots,
        "final_steps": [o.final_step for o in outcomes],
        "steps_to_result": [o.steps_to_result for o in outcomes],
        "status": [o.status for o in outcomes],
    }


def pruning_study(config: dict, optimizer: str, batch_size: int, prune: bool, precision: str = "float64") -> dict:
    """One study of the config's first workload, all its trials as a tune job trains them: its
    trial-steps, wall time and answer, with pruning (config prune) or without. In float64 each
    trial's arithmetic is the same whichever trials share its graph and when; in float32 not quite."""
    _start_tensorflow(None)
    name, workload, model, arrays = _workload(config)
    study = Study(name, optimizer, batch_size)
    trials = study_trials(config, study, range(config["trials"]))
    engine = Engine(model, arrays, optimizer, batch_size, precision)
    started = time.perf_counter()
    outcomes = engine.run(trials, **run_settings(config, name), prune_trials=prune)
    seconds = time.perf_counter() - started
    reached = [(o.steps_to_result, o.trial["trial_id"]) for o in outcomes if o.status == "reached"]
    steps_to_result, best_trial = min(reached, default=(math.nan, -1))
    return {
        "trial_steps": sum(o.final_step for o in outcomes),
        "seconds": seconds,
        "steps_to_result": steps_to_result,
        "best_trial": best_trial,
        "pruned": sum(o.status == "pruned" for o in outcomes),
    }


def merged(results: list[dict]) -> dict:
    """Processes that ran side by side as one run: counts add up, times are the slowest process's,
    per-trial lists are joined in order and a shared setting is the first's."""
    first = results[0]
    out = {}
    for key, value in first.items():
        values = [r[key] for r in results]
        if key in ("trials", "trial_steps", "slot_steps", "host_s"):
            out[key] = sum(values)
        elif key.endswith("_s") or key == "seconds":
            out[key] = max(values)
        elif key in ("final_steps", "steps_to_result", "status"):
            out[key] = [item for value in values for item in value]
        elif key == "eval_fraction":
            out[key] = sum(values) / len(values)
        else:
            out[key] = value
    if "slot_steps" in out:
        out["slot_utilisation"] = out["trial_steps"] / max(1, out["slot_steps"])
    return out


def _child(queue, barrier, function, args):
    queue.put(globals()[function](*args) if barrier is None else globals()[function](*args, barrier=barrier))


def in_processes(function: str, args_per_process: list[tuple], synchronised: bool = False) -> list[dict]:
    """Run `function` once per argument tuple, each in its own fresh process, all at once."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    barrier = context.Barrier(len(args_per_process)) if synchronised else None
    processes = [context.Process(target=_child, args=(queue, barrier, function, args)) for args in args_per_process]
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode:
            raise RuntimeError(f"{function} failed in a child process (exit code {process.exitcode})")
    return results


# -- the study's cost around the engine: Snakemake jobs and the DAG ------------------------------------
def _snakemake(workdir: Path, *args: str, timeout: float = 1800) -> tuple[float, subprocess.CompletedProcess]:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - started, result


def _workdir_with_data(data_dir: str) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    shutil.copytree(REPO / "config", workdir / "config")
    (workdir / data_dir).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(Path(data_dir).resolve(), workdir / data_dir)
    return workdir


def snakemake_job_overhead(config_path: Path, config: dict, batch_sizes: list[int]) -> list[dict]:
    """Real tune jobs through Snakemake: its wall time against the time the job itself logs."""
    workdir = _workdir_with_data(config["data_dir"])
    name = next(iter(config["workloads"]))
    rows = []
    try:
        _snakemake(workdir, f"{config['data_dir']}/mnist1d.prepared", "--cores", "1", "--configfile", str(config_path))
        for batch_size in batch_sizes:
            study = Study(name, "momentum", batch_size)
            path = shard_table(results_dir(config["study"]), "trials", study, 0)
            wall, _ = _snakemake(workdir, path, "--cores", "1", "--configfile", str(config_path))
            log = (workdir / tune_log(config["study"], study, 0)).read_text()
            ready = float(re.search(r"data and graph ready after ([\d.]+)s", log).group(1))
            done = float(re.search(r"done in ([\d.]+)s", log).group(1))
            rows.append(
                {
                    "batch_size": batch_size,
                    "snakemake_wall_s": wall,
                    "job_logged_s": done,
                    "job_setup_s": ready,
                    "overhead_s": wall - done,
                }
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def dag_scaling(config_path: Path, config: dict, trials_per_study: list[int]) -> list[dict]:
    """Dry-run time of the whole study against its number of jobs."""
    workdir = _workdir_with_data(config["data_dir"])
    rows = []
    try:
        for trials in trials_per_study:
            sized = {**config, "trials": trials}
            jobs = sum(shard_count(sized, s.workload) for s in studies(sized))
            wall, result = _snakemake(
                workdir, "-n", "--quiet", "rules", "--configfile", str(config_path), "--config", f"trials={trials}"
            )
            rows.append({"trials": trials * len(studies(sized)), "tune_jobs": jobs, "dry_run_s": wall})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


# -- the paper's models (bench/paper_workloads.py): the engine against Keras on mock data ----------------
# Timed runs per measurement, the fastest kept: on the 2-core machine the same run's speed varied by
# up to 1.5x from one run to the next, for Keras and the engine alike.
PAPER_REPEATS = 2


def paper_keras_fit(name: str, batch_size: int, steps: int, threads: int | None) -> dict:
    """The paper model as a plain Keras model: model.fit for `steps` steps, evaluating every
    EVAL_EVERY, timed from the end of its first step (its train and evaluation functions compiled
    before); best of PAPER_REPEATS fits."""
    _start_tensorflow(threads)
    import keras

    from batch_science.bench.paper_workloads import EVAL_EVERY, PAPER_WORKLOADS, keras_network, mock_arrays

    workload = PAPER_WORKLOADS[name]
    arrays = mock_arrays(workload)
    x_train, x_validation = arrays.x_train, arrays.x_validation
    if workload.language_model:
        x_train, x_validation = x_train.astype("int32"), x_validation.astype("int32")

    def evaluate(model):
        model.evaluate(x_validation, arrays.y_validation, batch_size=len(x_validation), verbose=0)

    class Evaluate(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps, self.first_step_at = 0, None

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            self.first_step_at = self.first_step_at or time.perf_counter()
            if self.steps % EVAL_EVERY == 0:
                evaluate(self.model)
            if self.steps >= steps:
                self.model.stop_training = True

    keras.utils.set_random_seed(0)
    started = time.perf_counter()
    model = keras_network(workload, get_model(workload.model))
    model.compile(
        optimizer=keras.optimizers.SGD(STEADY_TRIAL["learning_rate"], momentum=STEADY_TRIAL["momentum"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    evaluate(model)  # compiles the evaluation outside the timed steps, as the engine's first call does
    epochs = math.ceil(steps * batch_size / len(x_train)) + 1
    rates, startup = [], None
    for _ in range(PAPER_REPEATS):
        callback = Evaluate()
        model.fit(x_train, arrays.y_train, batch_size=batch_size, epochs=epochs, callbacks=[callback], verbose=0)
        startup = startup or callback.first_step_at - started
        rates.append((callback.steps - 1) / (time.perf_counter() - callback.first_step_at))
    return {
        "trials": 1,
        "trial_steps": steps - 1,
        "seconds": (steps - 1) / max(rates),
        "startup_s": startup,
        "trials_per_graph": 1,
        "jit_compile": model.jit_compile,
    }


def paper_engine(
    name: str, batch_size: int, steps: int, threads: int | None, jit_compile: bool | None, slots: int | None = None
) -> dict:
    """The engine on the paper model, its graph as full as the automatic grouping makes it (or of
    `slots` trials): a first run of one interval compiles (timed as the first call), then runs of
    `steps` steps per trial are timed, best of PAPER_REPEATS."""
    _start_tensorflow(threads)
    from batch_science.bench.paper_workloads import EVAL_EVERY, PAPER_WORKLOADS, mock_arrays

    workload = PAPER_WORKLOADS[name]
    arrays = mock_arrays(workload)
    started = time.perf_counter()
    engine = Engine(
        get_model(workload.model),
        arrays,
        "momentum",
        batch_size,
        jit_compile=jit_compile,
        batch_norm_sample_size=batch_norm_sample_size(EVAL_EVERY, batch_size),  # as a tune job sizes it
    )
    slots = slots or engine.group_size_for(1 << 20)
    target = Target(metric="error", value=0.0)

    def run(seed_base: int, n_steps: int) -> None:
        trials = [
            {**STEADY_TRIAL, "seed": seed_base + i, "step_budget": n_steps, "eval_every": EVAL_EVERY}
            for i in range(slots)
        ]
        engine.run(trials, target, stop_at_target=False, group_size=slots)

    run(10_000, EVAL_EVERY)
    compiled = time.perf_counter()
    seconds = []
    for repeat in range(PAPER_REPEATS):
        begun = time.perf_counter()
        run(repeat * slots, steps)
        seconds.append(time.perf_counter() - begun)
    return {
        "trials": slots,
        "trial_steps": slots * steps,
        "seconds": min(seconds),
        "startup_s": compiled - started,
        "first_call_s": engine.stats["first_call_s"],
        "trials_per_graph": slots,
        "jit_compile": engine.jit_compile,
    }
