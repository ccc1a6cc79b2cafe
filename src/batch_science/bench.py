"""`make bench`: the engine against the plain Keras loop, the machine's matmul peak, the cost of a study.

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
time of the default study goes, and Snakemake's per-job overhead) and dag.csv (dry-run time
against the number of jobs).
"""
from __future__ import annotations

import argparse
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

# Children inherit it: TensorFlow's C++ start-up notes would bury the table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]
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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.get_logger().setLevel("ERROR")
    return tf


def _workload(config: dict):
    """The default (first) workload of the config: its name, model, data and target."""
    from batch_science import data
    from batch_science.models import get_model

    name, workload = next(iter(config["workloads"].items()))
    return name, workload, get_model(workload["model"]), data.load(workload["dataset"], config["data_dir"])


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
    tf = _start_tensorflow(threads)
    import keras

    from batch_science.config import steps_for

    _, workload, model_spec, arrays = _workload(config)
    target = workload["target"]
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
                loss, accuracy = self.model.evaluate(arrays.x_validation, arrays.y_validation, batch_size=len(arrays.x_validation), verbose=0)
                metric = 1 - accuracy if target["metric"] == "error" else loss
                if metric < target["value"] or self.steps >= steps:
                    self.model.stop_training = True

    timed_steps, timed_s, startup_s = 0, 0.0, 0.0
    for trial in range(KERAS_TRIALS):
        keras.utils.set_random_seed(trial)
        started = time.perf_counter()
        layers = [keras.layers.Input(arrays.x_train.shape[1:]), keras.layers.Flatten()]
        layers += [keras.layers.Dense(width, activation="relu", kernel_initializer="he_normal") for width in model_spec.hidden]
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
    return {"trials": KERAS_TRIALS, "trial_steps": timed_steps, "seconds": timed_s, "startup_s": startup_s / KERAS_TRIALS, "eval_every": eval_every}


def engine_steady(config: dict, batch_size: int, threads: int | None, barrier=None, trials: int | None = None) -> dict:
    """The engine's steady throughput: a warm-up run compiles, a second run of the same shape is timed."""
    _start_tensorflow(threads)
    from batch_science.config import steps_for
    from batch_science.engine import Engine, Target

    _, workload, model, arrays = _workload(config)
    eval_every = steps_for(workload["eval_every"], batch_size)
    budget = steps_for(workload["step_budget"], batch_size)
    engine = Engine(model, arrays, "momentum", batch_size, config["precision"])
    slots = trials or engine.group_size_for(1 << 20)
    rounds = max(1, math.ceil(ENGINE_TRIAL_STEPS[batch_size] / (slots * budget)))

    def run(seed_base: int, n_trials: int, n_steps: int) -> float:
        batch = [{**STEADY_TRIAL, "seed": seed_base + i, "step_budget": n_steps, "eval_every": eval_every} for i in range(n_trials)]
        started = time.perf_counter()
        engine.run(batch, Target(**workload["target"]), stop_at_target=False, group_size=slots)
        return time.perf_counter() - started

    warmup_s = run(10_000, slots, eval_every)
    if barrier is not None:
        barrier.wait()  # processes sharing the machine time the same seconds
    seconds = run(0, slots * rounds, budget)
    # Evaluation's share: the same graph shape evaluated alone, as often as the run evaluates.
    import numpy as np

    weights = [engine.tf.constant(np.stack([model.init(i, engine.input_shape, engine.num_classes)[k] for i in range(slots)]), engine.dtype) for k in range(len(model.init(0, engine.input_shape, engine.num_classes)))]
    engine.evaluate(weights)[0].numpy()
    started = time.perf_counter()
    for _ in range(5):
        engine.evaluate(weights)[0].numpy()
    eval_s = (time.perf_counter() - started) / 5 * rounds * (budget // eval_every + 1)
    return {
        "trials": slots * rounds, "trial_steps": slots * rounds * budget, "seconds": seconds, "startup_s": warmup_s,
        "eval_fraction": min(1.0, eval_s / seconds), "eval_every": eval_every, "trials_per_graph": slots,
    }


def engine_sweep(config: dict, batch_size: int, threads: int | None, n_trials: int, group_size: int | None, process_start: float, shard: tuple[int, int] = (0, 1)) -> dict:
    """A real sweep, as a tune job runs it: the config's search space, budget and early stop, start-up included.

    `shard` = (k, n): this process runs the k-th of n contiguous parts of the sweep's trials, as
    one of n tune jobs would.
    """
    started = time.perf_counter()
    _start_tensorflow(threads)
    imported = time.perf_counter()
    from batch_science.config import Study
    from batch_science.engine import Engine, Target
    from batch_science.search import study_trials

    name, workload, model, arrays = _workload(config)
    study = Study(name, "momentum", batch_size)
    part, parts = shard
    trials = study_trials(config, study, range(part * n_trials // parts, (part + 1) * n_trials // parts))
    engine = Engine(model, arrays, study.optimizer, batch_size, config["precision"])
    slots = engine.slots_for(len(trials), group_size)  # as a tune job decides it
    ready = time.perf_counter()
    outcomes = engine.run(
        trials, Target(**workload["target"]), divergence_factor=config["divergence_factor"],
        stop_at_target=config["stop_at_target"], group_size=slots,
    )
    finished = time.perf_counter()
    stats = engine.stats
    return {
        "trials": len(trials), "trial_steps": stats["trial_steps"], "slot_steps": stats["slot_steps"], "seconds": finished - process_start,
        "import_s": imported - process_start, "setup_s": ready - imported, "python_start_s": started - process_start, "first_call_s": stats["first_call_s"],
        "train_and_eval_s": stats["call_s"], "host_s": stats["host_s"], "graph_sizes": stats["graph_sizes"],
        "slot_utilisation": stats["trial_steps"] / max(1, stats["slot_steps"]),
        "trials_per_graph": slots,
        "final_steps": [o.final_step for o in outcomes],
        "steps_to_result": [o.steps_to_result for o in outcomes], "status": [o.status for o in outcomes],
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
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - started, result


def _workdir_with_data(config_path: Path, data_dir: str) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    shutil.copytree(REPO / "config", workdir / "config")
    (workdir / data_dir).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(Path(data_dir).resolve(), workdir / data_dir)
    return workdir


def snakemake_job_overhead(config_path: Path, config: dict, batch_sizes: list[int]) -> list[dict]:
    """Real tune jobs through Snakemake: its wall time against the time the job itself logs."""
    workdir = _workdir_with_data(config_path, config["data_dir"])
    name = next(iter(config["workloads"]))
    rows = []
    try:
        _snakemake(workdir, f"{config['data_dir']}/mnist1d.prepared", "--cores", "1", "--configfile", str(config_path))
        for batch_size in batch_sizes:
            path = f"results/{config['study']}/trials/{name}/momentum/b{batch_size}/shard0.parquet"
            wall, _ = _snakemake(workdir, path, "--cores", "1", "--configfile", str(config_path))
            log = (workdir / f"logs/tune/{config['study']}/{name}/momentum/b{batch_size}/shard0.log").read_text()
            ready = float(re.search(r"data and graph ready after ([\d.]+)s", log).group(1))
            done = float(re.search(r"done in ([\d.]+)s", log).group(1))
            rows.append({"batch_size": batch_size, "snakemake_wall_s": wall, "job_logged_s": done, "job_setup_s": ready, "overhead_s": wall - done})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def dag_scaling(config_path: Path, config: dict, trials_per_study: list[int]) -> list[dict]:
    """Dry-run time of the whole study against its number of jobs."""
    from batch_science.config import shard_count, studies

    workdir = _workdir_with_data(config_path, config["data_dir"])
    rows = []
    try:
        for trials in trials_per_study:
            sized = {**config, "trials": trials}
            jobs = sum(shard_count(sized, s.workload) for s in studies(sized))
            wall, result = _snakemake(workdir, "-n", "--quiet", "rules", "--configfile", str(config_path), "--config", f"trials={trials}")
            rows.append({"trials": trials * len(studies(sized)), "tune_jobs": jobs, "dry_run_s": wall})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


# -- the run ------------------------------------------------------------------------------------------
def _flops_per_trial_step(config: dict, batch_size: int, eval_every: int) -> float:
    from batch_science.models import get_model

    workload = next(iter(config["workloads"].values()))
    forward = get_model(workload["model"]).flops_per_example((40,), 10) if workload["dataset"]["name"] == "mnist1d" else math.nan
    return 3 * forward * batch_size + forward * 2000 / eval_every  # training + evaluation of MNIST-1D's 2000


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--sweep-trials", type=int, default=96)
    parser.add_argument("--sweep-batch-sizes", type=int, nargs="*", default=[16, 256])
    parser.add_argument("--float32-check-batch-size", type=int, default=256, help="sweep rerun one trial per graph to compare (0: skip)")
    parser.add_argument("--dag-trials", type=int, nargs="*", default=[16, 112, 336, 672], help="trials per study in the dry-run scaling")
    parser.add_argument("--job-batch-sizes", type=int, nargs="*", default=[256, 4096], help="tune jobs run through Snakemake")
    args = parser.parse_args(argv)

    import pandas as pd

    from batch_science.config import load_config

    config_path = Path(args.config).resolve()
    config = load_config(config_path)
    cores = os.cpu_count() or 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gpus = in_processes("accelerators", [()])[0]["gpus"]
    device = f"GPU ({', '.join(gpus)})" if gpus else f"{cores} CPU cores"
    print(f"bench: {device}, config {config_path.name}, workload {next(iter(config['workloads']))}, {config['precision']}", flush=True)
    # One tune job per core is how Snakemake runs a CPU machine; a GPU is shared by no such jobs.
    jobs_per_core = cores > 1 and not gpus

    # An accelerator needs a larger product than a CPU to reach its peak.
    peak = in_processes("matmul_peak", [(None, 8192 if gpus else 2048)])[0]["gflops"]
    print(f"float32 matmul peak, {device}: {peak:.1f} GFLOP/s", flush=True)

    rows = []

    def add(batch_size, strategy, result, processes=1, extra=None):
        rate = result["trial_steps"] / result["seconds"]
        flops = _flops_per_trial_step(config, batch_size, result["eval_every"])
        rows.append({
            "batch_size": batch_size, "strategy": strategy, "trials": result["trials"], "processes": processes,
            "trials_per_graph": result.get("trials_per_graph", math.nan),
            "trial_steps_per_s": rate, "gflops": rate * flops / 1e9, "fraction_of_matmul_peak": rate * flops / 1e9 / peak,
            "startup_s": result.get("startup_s", math.nan), "eval_fraction": result.get("eval_fraction", math.nan),
            "eval_every": result["eval_every"], **(extra or {}),
        })
        print(f"  b{batch_size} {strategy}: {rate:,.0f} trial-steps/s", flush=True)

    for batch_size in args.batch_sizes:
        keras = in_processes("keras_fit", [(config, batch_size, None)])[0]
        add(batch_size, "keras_fit", keras)
        add(batch_size, "engine", in_processes("engine_steady", [(config, batch_size, None)])[0])
        if jobs_per_core:
            # One single-threaded job per core, as Snakemake runs tune jobs with --cores N.
            per_core = in_processes("engine_steady", [(config, batch_size, 1)] * cores, synchronised=True)
            add(batch_size, "engine_job_per_core", merged(per_core), processes=cores)

    keras_rates = {r["batch_size"]: r for r in rows if r["strategy"] == "keras_fit"}
    sweeps = []
    for batch_size in args.sweep_batch_sizes:
        runs = [("engine_sweep", 1, in_processes("engine_sweep", [(config, batch_size, None, args.sweep_trials, None, time.perf_counter())])[0])]
        if jobs_per_core:
            # The same sweep as the pipeline runs it with --cores N: N single-threaded tune jobs of
            # a part of the trials each, started together; timed until the last one ends.
            launched = time.perf_counter()
            parts = in_processes("engine_sweep", [(config, batch_size, 1, args.sweep_trials, None, launched, (k, cores)) for k in range(cores)])
            runs.append(("engine_sweep_job_per_core", cores, merged(parts)))
        sweeps += [(batch_size, processes, result) for _, processes, result in runs]
        keras = keras_rates.get(batch_size)
        for strategy, processes, result in runs:
            # Keras on the same sweep: each trial the steps the engine trained it, at Keras' measured
            # steady rate, plus its measured per-trial start-up (extrapolated: hours to run for real).
            keras_s = sum(keras["startup_s"] + steps / keras["trial_steps_per_s"] for steps in result["final_steps"]) if keras else math.nan
            extra = {
                "trials_per_hour": 3600 * result["trials"] / result["seconds"], "startup_s": result["import_s"] + result["setup_s"] + result["first_call_s"],
                "keras_extrapolated_s": keras_s, "sweep_ratio_vs_keras_fit": keras_s / result["seconds"],
            }
            add(batch_size, strategy, {**result, "eval_every": _eval_every(config, batch_size)}, processes=processes, extra=extra)
            print(f"    sweep of {result['trials']} trials in {processes} process(es): {result['seconds']:.1f}s (import {result['import_s']:.1f}s, setup {result['setup_s']:.1f}s, "
                  f"first call with compile {result['first_call_s']:.1f}s, train+eval {result['train_and_eval_s']:.1f}s, host {result['host_s']:.2f}s, "
                  f"graph sizes {result['graph_sizes']}, slots busy {result['slot_utilisation']:.0%}); Keras extrapolated {keras_s:.0f}s", flush=True)

    agreement = None
    if args.float32_check_batch_size:
        batch_size = args.float32_check_batch_size
        grouped = next((r for b, processes, r in sweeps if b == batch_size and processes == 1), None) or in_processes(
            "engine_sweep", [(config, batch_size, None, args.sweep_trials, None, time.perf_counter())])[0]
        alone = in_processes("engine_sweep", [(config, batch_size, None, args.sweep_trials, 1, time.perf_counter())])[0]
        same = [
            (a == b) or (math.isnan(a) and math.isnan(b)) for a, b in zip(grouped["steps_to_result"], alone["steps_to_result"])
        ]
        same_status = [a == b for a, b in zip(grouped["status"], alone["status"])]
        agreement = {"batch_size": batch_size, "trials": len(same), "identical_steps_to_result": sum(same) / len(same), "identical_status": sum(same_status) / len(same)}
        print(f"  {config['precision']} b{batch_size}: {grouped['trials_per_graph']} trials per graph vs one: steps to result identical for "
              f"{agreement['identical_steps_to_result']:.1%} of {len(same)} trials, status for {agreement['identical_status']:.1%}", flush=True)

    table = pd.DataFrame(rows)
    keras_by_batch = table[table.strategy == "keras_fit"].set_index("batch_size")["trial_steps_per_s"]
    table.insert(5, "ratio_vs_keras_fit", table.trial_steps_per_s / table.batch_size.map(keras_by_batch))
    table["matmul_peak_gflops"] = peak
    table["device"] = device
    table.to_csv(out / "engine.csv", index=False)

    study_rows = []
    for batch_size, processes, result in sweeps:
        study_rows.append({
            "part": f"sweep b{batch_size}" + (f" in {processes} jobs" if processes > 1 else ""), "import_s": result["import_s"], "setup_s": result["setup_s"], "compile_and_first_interval_s": result["first_call_s"],
            "train_and_eval_s": result["train_and_eval_s"], "python_between_intervals_s": result["host_s"], "total_s": result["seconds"],
            "slot_utilisation": result["slot_utilisation"],
            "eval_fraction_of_steady": table[(table.batch_size == batch_size) & (table.strategy == "engine")].eval_fraction.mean() if batch_size in args.batch_sizes else math.nan,
        })
    jobs = snakemake_job_overhead(config_path, config, args.job_batch_sizes) if args.job_batch_sizes else []
    for job in jobs:
        study_rows.append({"part": f"snakemake tune job b{job['batch_size']}", "total_s": job["snakemake_wall_s"], "job_logged_s": job["job_logged_s"],
                           "setup_s": job["job_setup_s"], "snakemake_overhead_s": job["overhead_s"]})
    if agreement:
        study_rows.append({"part": f"{config['precision']} grouping agreement b{agreement['batch_size']}", **{k: v for k, v in agreement.items() if k != "batch_size"}})
    pd.DataFrame(study_rows).to_csv(out / "study.csv", index=False)

    dag = pd.DataFrame(dag_scaling(config_path, config, args.dag_trials)) if args.dag_trials else pd.DataFrame()
    dag.to_csv(out / "dag.csv", index=False)

    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:,.3g}".format):
        print("\nengine.csv")
        print(table.drop(columns=["matmul_peak_gflops", "device"]).to_string(index=False))
        print("\nstudy.csv (seconds)")
        print(pd.DataFrame(study_rows).to_string(index=False))
        if len(dag):
            print("\ndag.csv")
            print(dag.to_string(index=False))
    print("\ngoals (issue 3), best engine strategy per row:")
    for line in goal_lines(table):
        print("  " + line)
    print(f"\nwritten to {out}/")


# The engine's goals against the Keras loop, per batch size: (ratio, fraction of the matmul peak).
GOALS = {16: (80, None), 256: (12, None), 4096: (3, 0.6)}
SWEEP_GOAL = (16, 40)


def goal_lines(table) -> list[str]:
    """One line per goal: the measured figure, the goal, met or not (engine rows, best strategy)."""
    lines = []
    engines = table[table.strategy.isin(["engine", "engine_job_per_core"])]
    for batch_size, (ratio_goal, peak_goal) in GOALS.items():
        rows = engines[engines.batch_size == batch_size]
        if not len(rows):
            continue
        best = rows.loc[rows.ratio_vs_keras_fit.idxmax()]
        lines.append(f"b{batch_size}: {best.ratio_vs_keras_fit:.1f}x the Keras loop ({best.strategy}), goal {ratio_goal}x: {'met' if best.ratio_vs_keras_fit >= ratio_goal else 'NOT met'}")
        if peak_goal:
            best = rows.loc[rows.fraction_of_matmul_peak.idxmax()]
            lines.append(f"b{batch_size}: {best.fraction_of_matmul_peak:.0%} of the matmul peak ({best.strategy}), goal {peak_goal:.0%}: {'met' if best.fraction_of_matmul_peak >= peak_goal else 'NOT met'}")
    sweeps = table[table.strategy.isin(["engine_sweep", "engine_sweep_job_per_core"]) & (table.batch_size == SWEEP_GOAL[0])]
    if len(sweeps):
        best = sweeps.loc[sweeps.sweep_ratio_vs_keras_fit.idxmax()]
        ratio = float(best.sweep_ratio_vs_keras_fit)
        lines.append(f"sweep b{SWEEP_GOAL[0]}: {ratio:.1f}x the Keras loop, start-up included ({best.strategy}), goal {SWEEP_GOAL[1]}x: {'met' if ratio >= SWEEP_GOAL[1] else 'NOT met'}")
    return lines


def _eval_every(config: dict, batch_size: int) -> int:
    from batch_science.config import steps_for

    return steps_for(next(iter(config["workloads"].values()))["eval_every"], batch_size)


if __name__ == "__main__":
    main()
