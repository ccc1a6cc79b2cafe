"""A tune job: train one shard of a study's trials and write its trial and curve tables.

Each finished trial is written at once, durably, to the study's partial folder; a rerun of a
killed or failed job trains only the trials not yet there, so no finished trial is lost. Trials
part-way through are checkpointed beside them every `checkpoint_minutes` (checkpoint.py), and a
rerun resumes them from there.
SIGTERM (SLURM's time limit, preemption, scancel) and SIGUSR1 (SLURM's `--signal` warning) stop
the job cleanly after the current compiled call: the trials in flight are checkpointed, no file is
left half-written, and one log line says what is kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import signal
import time
from pathlib import Path

import pandas as pd

from batch_science.config import (
    Study,
    data_parallel_for,
    dataset_name,
    is_nqm,
    run_settings,
    shard_count,
    shard_trials,
    steps_for,
    workload_setting,
)
from batch_science.data.checks import check_batch_sizes
from batch_science.data.load import load
from batch_science.data.streamed import StreamedData
from batch_science.io import read_parquet_metadata, write_parquet
from batch_science.models.registry import get_model
from batch_science.tables import CURVE_KEYS, best_step_file, partial_trial, provenance, trial_checkpoint
from batch_science.training import checkpoint, nqm
from batch_science.training.data_parallel import DataParallelTrial, strategy_for_study, writes_results
from batch_science.training.device import configure_tensorflow, training_device
from batch_science.training.engine import Engine, batch_norm_sample_size
from batch_science.training.optimizers import STATE
from batch_science.training.runner import Progress
from batch_science.training.streaming_engine import StreamingEngine
from batch_science.trials import PRUNED, effective_learning_rate
from batch_science.tuning.pruning import StudyBest
from batch_science.tuning.search import shard_fingerprint, study_record, study_trials, trial_fingerprint

log = logging.getLogger(__name__)


def _load_partial(path: Path, fingerprint: str, prune: bool) -> tuple[dict, pd.DataFrame] | None:
    """A finished trial kept by an earlier run, if made with these settings (a pruned one only while pruning)."""
    if not path.exists():
        return None
    try:
        meta = read_parquet_metadata(path)
        if meta.get("fingerprint") != fingerprint:
            log.warning("%s: made with other settings, retraining that trial", path)
            return None
        record = json.loads(meta["record"])
        if record["status"] == PRUNED and not prune:
            log.info("%s: pruned, retraining that trial to its budget (prune is off)", path)
            return None
        return record, pd.read_parquet(path)
    except Exception as error:  # e.g. truncated by a copy or a full disk: retrain rather than fail
        log.warning("%s: unreadable (%s), retraining that trial", path, " ".join(str(error).split()))
        return None


def _remove_stale_temporaries(partial_dir: str | Path, trial_ids) -> None:
    """Delete half-written files of this job's trials left by a killed writer (SIGKILL, node loss).

    Only this job's trial ids: other shards of the study write into the same folder concurrently.
    """
    for trial_id in trial_ids:
        name = partial_trial(partial_dir, trial_id).name
        for stale in Path(partial_dir).glob(f".{name}.*.tmp"):
            log.info("%s: removing a half-written file of a killed job", stale)
            stale.unlink(missing_ok=True)


class JobTerminated(Exception):
    """The job was asked to stop (SIGTERM, SIGUSR1); finished trials are already on disk."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """The termination signal received, if any, and what was checkpointed on it (trial id -> step)."""

    def __init__(self):
        self.signum: int | None = None
        self.checkpointed: dict[int, int] = {}


@contextlib.contextmanager
def stop_on_termination_signals(signals=(signal.SIGTERM, signal.SIGUSR1)):
    """Note termination signals in the StopRequest yielded, instead of dying at once.

    The training loop looks at it after each compiled call, where every trial's state is
    consistent: it checkpoints the trials in flight and raises JobTerminated. Python could not run
    a handler during a compiled call anyway, so stopping is no later than before.
    """
    request = StopRequest()

    def handler(signum, frame):
        request.signum = signum

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield request
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _outcome_tables(record_base: dict, outcome) -> tuple[dict, pd.DataFrame]:
    trial = outcome.trial
    record = {
        **record_base,
        **trial,
        "effective_learning_rate": effective_learning_rate(trial["learning_rate"], trial["momentum"]),
        "status": outcome.status,
        "steps_to_result": outcome.steps_to_result,
        "best_val_metric": outcome.best_metric,
        "best_step": outcome.best_step,
        "final_step": outcome.final_step,
    }
    curve = pd.DataFrame(outcome.curve)
    for key in reversed(CURVE_KEYS):
        curve.insert(0, key, record[key])
    return record, curve


def _trial_saver(config: dict, study: Study, base: dict, partial_dir: str, todo: list[dict], finished: dict):
    """on_finish callback: write a finished trial durably to the partial folder and keep it."""
    by_id = {t["trial_id"]: t for t in todo}

    def save(outcome) -> None:
        record, curve = _outcome_tables(base, outcome)
        # Fingerprint the trial as it was asked for, so a rerun recognises it.
        meta = {
            "fingerprint": trial_fingerprint(config, study, by_id[record["trial_id"]]),
            "record": json.dumps(record),
        }
        write_parquet(curve, partial_trial(partial_dir, record["trial_id"]), meta)
        checkpoint.remove(trial_checkpoint(partial_dir, record["trial_id"]))  # the partial file supersedes it
        finished[record["trial_id"]] = (record, curve)

    return save


def _checkpointer(config: dict, study: Study, label: str, partial_dir: str, todo: list[dict], stop: StopRequest):
    """on_interval callback: checkpoint the trials in flight every checkpoint_minutes, and at once
    when a termination signal came, then stop the job."""
    by_id = {t["trial_id"]: t for t in todo}
    period_s = 60 * config["checkpoint_minutes"]
    last_save = time.monotonic()

    def on_interval(in_flight) -> None:
        nonlocal last_save
        if stop.signum or (period_s and time.monotonic() - last_save >= period_s):
            started = time.monotonic()
            states = in_flight()
            for state in states:
                trial = by_id[state.outcome.trial["trial_id"]]
                checkpoint.save(
                    trial_checkpoint(partial_dir, trial["trial_id"]), state, trial_fingerprint(config, study, trial)
                )
            last_save = time.monotonic()
            stop.checkpointed = {state.outcome.trial["trial_id"]: state.step for state in states}
            if states:
                log.info("%s: checkpointed %d trials in flight in %.2fs", label, len(states), last_save - started)
        if stop.signum:
            raise JobTerminated(stop.signum)

    return on_interval


def _run_nqm_trials(config: dict, study: Study, todo: list[dict], save) -> None:
    """The noisy quadratic model: each trial's expected loss by exact recursion, no TensorFlow."""
    spec = config["workloads"][study.workload]["nqm"]
    nqm.run_trials(
        spec, study.optimizer, study.batch_size, todo, **run_settings(config, study.workload), on_finish=save
    )


def _data_parallel_strategy(config: dict, study: Study, label: str):
    """The tf.distribute strategy of a data-parallel study (config data_parallel), else None."""
    spec = data_parallel_for(config, study)
    if spec is None:
        log.info("%s: trials trained together on one device (engine)", label)
        return None
    strategy = strategy_for_study(spec)
    log.info(
        "%s: trials trained one at a time, data-parallel over %d devices (%d per node)",
        label,
        strategy.num_replicas_in_sync,
        spec["devices"],
    )
    return strategy


def _study_best(config: dict, study: Study, shard: int, partial_dir: str, finished: dict) -> StudyBest:
    """The study's best step as this job and the study's other jobs found it (tuning/pruning.py)."""
    files = [best_step_file(partial_dir, k) for k in range(shard_count(config, study.workload))]

    def fingerprint(trial_id: int) -> str:
        return trial_fingerprint(config, study, study_trials(config, study, [trial_id])[0])

    return StudyBest(files, best_step_file(partial_dir, shard), fingerprint, [r for r, _ in finished.values()])


def build_engine(config: dict, study: Study, arrays) -> Engine:
    """The engine that trains `study`'s trials on `arrays` (streamed from disk when they are a
    StreamedData: the same results)."""
    workload = config["workloads"][study.workload]
    engine_class = StreamingEngine if isinstance(arrays, StreamedData) else Engine
    return engine_class(
        get_model(workload["model"], config.get("config_dir")),
        arrays,
        study.optimizer,
        study.batch_size,
        config["precision"],
        batch_norm_sample_size=batch_norm_sample_size(
            steps_for(workload["eval_every"], study.batch_size), study.batch_size
        ),
    )


def _trainer(engine, strategy):
    """Engine.run, or, with a strategy, the same contract one trial at a time over its devices."""
    if strategy is None:
        return engine.run
    return DataParallelTrial(engine, strategy).run_trials


def run_tune_job(
    config: dict, study: Study, shard: int, trials_out: str, curves_out: str, partial_dir: str, threads: int = 1
) -> None:
    started = time.monotonic()
    # Where each trial ran is part of its provenance: results are reproducible on the same machine.
    base = {
        **study_record(config, study),
        "training_host": platform.node(),
        "training_device": "CPU: exact NQM recursion",
    }
    trials = study_trials(config, study, shard_trials(config, shard, study.workload))
    label = f"{study.path} shard {shard}"
    if "SLURM_JOB_ID" in os.environ:  # where the job ran, to match with squeue/sacct and the GPU it got
        log.info(
            "%s: SLURM job %s on %s, CUDA_VISIBLE_DEVICES=%s",
            label,
            os.environ["SLURM_JOB_ID"],
            os.environ.get("SLURMD_NODENAME", "?"),
            os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
        )
    finished: dict[int, tuple[dict, pd.DataFrame]] = {}
    _remove_stale_temporaries(partial_dir, [t["trial_id"] for t in trials])
    prune = workload_setting(config, study.workload, "prune")
    for trial in trials:
        loaded = _load_partial(
            partial_trial(partial_dir, trial["trial_id"]), trial_fingerprint(config, study, trial), prune
        )
        if loaded:
            finished[trial["trial_id"]] = loaded
            checkpoint.remove(
                trial_checkpoint(partial_dir, trial["trial_id"])
            )  # left if killed right after the partial file
    todo = [t for t in trials if t["trial_id"] not in finished]
    log.info("%s: %d trials, %d already finished, %d to train", label, len(trials), len(finished), len(todo))

    save = _trial_saver(config, study, base, partial_dir, todo, finished)
    if todo and prune and (is_nqm(config["workloads"][study.workload]) or data_parallel_for(config, study)):
        log.info("%s: prune is on, but this trainer trains every trial to its budget", label)
    if todo and is_nqm(config["workloads"][study.workload]):
        _run_nqm_trials(config, study, todo, save)
    elif todo:
        configure_tensorflow(threads)
        strategy = _data_parallel_strategy(config, study, label)  # before TensorFlow starts: it may split the CPU
        base["training_device"] = training_device()
        workload = config["workloads"][study.workload]
        arrays = load(workload["dataset"], config["data_dir"], config.get("config_dir"))
        n_train = arrays.n_train if isinstance(arrays, StreamedData) else len(arrays.x_train)
        check_batch_sizes([study.batch_size], n_train, f"workloads.{study.workload}", dataset_name(workload["dataset"]))
        engine = build_engine(config, study, arrays)
        if hasattr(engine.model, "batch_norm_statistics"):
            log.info(
                "%s: batch norm evaluated on the statistics of %d training examples",
                label,
                engine.batch_norm_sample_size,
            )
        resume = {}
        like = engine.model.init(
            0, engine.input_shape, engine.num_classes
        )  # the weight shapes, the same for every trial
        for trial in todo if strategy is None else []:  # data-parallel trials are not checkpointed mid-trial
            state = checkpoint.load(
                trial_checkpoint(partial_dir, trial["trial_id"]),
                trial_fingerprint(config, study, trial),
                like,
                engine.dtype,
                STATE[study.optimizer],
            )
            if state:
                resume[trial["trial_id"]] = state
                log.info(
                    "%s: trial %d resumed at step %d of %d", label, trial["trial_id"], state.step, trial["step_budget"]
                )
        group_size = None if config["trials_per_graph"] == "auto" else config["trials_per_graph"]
        slots = 1 if strategy else engine.slots_for(len(todo), group_size)  # data-parallel: one trial at a time
        # Provenance: in float32 a trial's last bits can depend on the graph it shared (docs/engine.md).
        base["trials_per_graph"] = slots
        progress = Progress(
            label, len(todo), sum(t["step_budget"] for t in todo) - sum(s.step for s in resume.values())
        )
        log.info("%s: data and graph ready after %.1fs", label, time.monotonic() - started)
        try:
            with stop_on_termination_signals() as stop:
                checkpoints = (
                    {}
                    if strategy
                    else {
                        "resume": resume,
                        "on_interval": _checkpointer(config, study, label, partial_dir, todo, stop),
                        "prune_trials": prune,
                        "share_best": _study_best(config, study, shard, partial_dir, finished).share,
                    }
                )
                _trainer(engine, strategy)(
                    todo,
                    **run_settings(config, study.workload),
                    group_size=slots,
                    on_finish=save,
                    progress=progress,
                    **checkpoints,
                )
            stats = engine.stats
            if strategy is None:
                log.info(
                    "%s: engine: %d compiled calls, graph sizes %s, compilation and first calls %.1fs, training and "
                    "evaluation %.1fs, "
                    "Python between calls %.1fs, slots busy %.0f%%",
                    label,
                    stats["calls"],
                    stats["graph_sizes"],
                    stats["first_call_s"],
                    stats["call_s"],
                    stats["host_s"],
                    100 * stats["trial_steps"] / max(1, stats["slot_steps"]),
                )
        except JobTerminated as terminated:
            in_flight = ", ".join(f"trial {trial_id} at step {step}" for trial_id, step in stop.checkpointed.items())
            log.warning(
                "%s: stopped by %s with %d of %d trials finished, kept in %s, and %d checkpointed mid-trial (%s); "
                "a rerun trains only the other %d, resuming the checkpointed ones",
                label,
                terminated,
                len(finished),
                len(trials),
                partial_dir,
                len(stop.checkpointed),
                in_flight or "none",
                len(trials) - len(finished),
            )
            raise SystemExit(128 + terminated.signum) from None
        if strategy is not None and not writes_results(strategy):
            return  # another worker of this multi-node job wrote the trials; this one trained alongside

    # A kept trial's fingerprint matches this config: it is this config's result, under its hash.
    records = [{**finished[t["trial_id"]][0], "config_hash": base["config_hash"]} for t in trials]
    curves = pd.concat([finished[t["trial_id"]][1] for t in trials], ignore_index=True)
    meta = {**provenance(config), "shard_fingerprint": shard_fingerprint(config, study, shard)}
    write_parquet(pd.DataFrame(records), trials_out, meta)
    write_parquet(curves, curves_out, meta)
    counts = pd.Series([r["status"] for r in records]).value_counts().to_dict()
    log.info("%s: done in %.1fs: %s", label, time.monotonic() - started, counts)
