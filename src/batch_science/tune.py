"""A tune job: train one shard of a study's trials and write its trial and curve tables.

Each finished trial is written at once, durably, to the study's partial folder; a rerun of a
killed or failed job trains only the trials not yet there, so no finished trial is lost.
SIGTERM (SLURM's time limit, preemption, scancel) and SIGUSR1 (SLURM's `--signal` warning) stop
the job cleanly between training chunks: no half-written file, one log line saying what is kept.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path

import pandas as pd

from batch_science.config import Study, shard_trials
from batch_science.io import read_parquet_metadata, write_parquet
from batch_science.provenance import provenance
from batch_science.search import study_record, study_trials

log = logging.getLogger(__name__)

CURVE_KEYS = ["workload", "optimizer", "batch_size", "trial_id"]


def _fingerprint(config: dict, study: Study, trial: dict) -> str:
    """Everything a trial's result depends on: a partial result is reused only if it matches."""
    workload = config["workloads"][study.workload]
    keys = {k: workload[k] for k in ("dataset", "model", "target", "eval_every", "nqm") if k in workload}
    engine = {k: config[k] for k in ("precision", "divergence_factor", "stop_at_target", "data_dir")}
    return json.dumps({"study": study.path, "trial": trial, "workload": keys, "engine": engine}, sort_keys=True)


def partial_path(partial_dir: str | Path, trial_id: int) -> Path:
    return Path(partial_dir) / f"trial_{trial_id:05d}.parquet"


def _load_partial(path: Path, fingerprint: str) -> tuple[dict, pd.DataFrame] | None:
    if not path.exists():
        return None
    try:
        meta = read_parquet_metadata(path)
        if meta.get("fingerprint") != fingerprint:
            log.warning("%s: made with other settings, retraining that trial", path)
            return None
        return json.loads(meta["record"]), pd.read_parquet(path)
    except Exception as error:  # e.g. truncated by a copy or a full disk: retrain rather than fail
        log.warning("%s: unreadable (%s), retraining that trial", path, " ".join(str(error).split()))
        return None


def _remove_stale_temporaries(partial_dir: str | Path, trial_ids) -> None:
    """Delete half-written files of this job's trials left by a killed writer (SIGKILL, node loss).

    Only this job's trial ids: other shards of the study write into the same folder concurrently.
    """
    for trial_id in trial_ids:
        name = partial_path(partial_dir, trial_id).name
        for stale in Path(partial_dir).glob(f".{name}.*.tmp"):
            log.info("%s: removing a half-written file of a killed job", stale)
            stale.unlink(missing_ok=True)


class JobTerminated(Exception):
    """The job was asked to stop (SIGTERM, SIGUSR1); finished trials are already on disk."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_termination_signals(signals=(signal.SIGTERM, signal.SIGUSR1)):
    """Turn termination signals into JobTerminated, raised in the main thread.

    Python runs the handler between bytecodes, so a compiled training chunk finishes first and a
    partial file being written is either completed or removed (atomic_write), never left half done.
    """

    def handler(signum, frame):
        raise JobTerminated(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _outcome_tables(record_base: dict, outcome) -> tuple[dict, pd.DataFrame]:
    trial = outcome.trial
    record = {
        **record_base,
        **trial,
        "effective_learning_rate": trial["learning_rate"] / (1 - trial["momentum"]),
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


def configure_tensorflow(threads: int) -> None:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        log.info("TensorFlow already initialised in this process: keeping its thread settings")


def _trial_saver(config: dict, study: Study, base: dict, partial_dir: str, todo: list[dict], finished: dict):
    """on_finish callback: write a finished trial durably to the partial folder and keep it."""
    by_id = {t["trial_id"]: t for t in todo}

    def save(outcome) -> None:
        record, curve = _outcome_tables(base, outcome)
        # Fingerprint the trial as it was asked for, so a rerun recognises it.
        meta = {"fingerprint": _fingerprint(config, study, by_id[record["trial_id"]]), "record": json.dumps(record)}
        write_parquet(curve, partial_path(partial_dir, record["trial_id"]), meta)
        finished[record["trial_id"]] = (record, curve)

    return save


def _run_nqm_trials(config: dict, study: Study, todo: list[dict], save) -> None:
    """The noisy quadratic model: each trial's expected loss by exact recursion, no TensorFlow."""
    from batch_science.engine import Target
    from batch_science.nqm import run_trials

    workload = config["workloads"][study.workload]
    run_trials(
        workload["nqm"], study.optimizer, study.batch_size, todo, Target(**workload["target"]),
        divergence_factor=config["divergence_factor"], stop_at_target=config["stop_at_target"], on_finish=save,
    )


def run_tune_job(config: dict, study: Study, shard: int, trials_out: str, curves_out: str, partial_dir: str, threads: int = 1) -> None:
    started = time.monotonic()
    base = study_record(config, study)
    trials = study_trials(config, study, shard_trials(config, shard, study.workload))
    label = f"{study.path} shard {shard}"
    if "SLURM_JOB_ID" in os.environ:  # where the job ran, to match with squeue/sacct and the GPU it got
        log.info(
            "%s: SLURM job %s on %s, CUDA_VISIBLE_DEVICES=%s", label, os.environ["SLURM_JOB_ID"],
            os.environ.get("SLURMD_NODENAME", "?"), os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
        )
    finished: dict[int, tuple[dict, pd.DataFrame]] = {}
    _remove_stale_temporaries(partial_dir, [t["trial_id"] for t in trials])
    for trial in trials:
        loaded = _load_partial(partial_path(partial_dir, trial["trial_id"]), _fingerprint(config, study, trial))
        if loaded:
            finished[trial["trial_id"]] = loaded
    todo = [t for t in trials if t["trial_id"] not in finished]
    log.info("%s: %d trials, %d already finished, %d to train", label, len(trials), len(finished), len(todo))

    save = _trial_saver(config, study, base, partial_dir, todo, finished)
    if todo and config["workloads"][study.workload]["dataset"]["name"] == "nqm":
        _run_nqm_trials(config, study, todo, save)
    elif todo:
        configure_tensorflow(threads)
        from batch_science import data
        from batch_science.engine import Engine, Progress, Target
        from batch_science.models import get_model

        workload = config["workloads"][study.workload]
        arrays = data.load(workload["dataset"], config["data_dir"])
        engine = Engine(get_model(workload["model"]), arrays, study.optimizer, study.batch_size, config["precision"])
        budget = todo[0]["step_budget"]
        progress = Progress(label, len(todo), len(todo) * budget)
        log.info("%s: data and graph ready after %.1fs", label, time.monotonic() - started)
        try:
            with stop_on_termination_signals():
                engine.run(
                    todo,
                    Target(**workload["target"]),
                    divergence_factor=config["divergence_factor"],
                    stop_at_target=config["stop_at_target"],
                    group_size=None if config["trials_per_graph"] == "auto" else config["trials_per_graph"],
                    on_finish=save,
                    progress=progress,
                )
        except JobTerminated as stop:
            log.warning(
                "%s: stopped by %s with %d of %d trials finished, kept in %s; a rerun trains only the other %d",
                label, stop, len(finished), len(trials), partial_dir, len(trials) - len(finished),
            )
            raise SystemExit(128 + stop.signum) from None

    records = [finished[t["trial_id"]][0] for t in trials]
    curves = pd.concat([finished[t["trial_id"]][1] for t in trials], ignore_index=True)
    meta = provenance(config)
    write_parquet(pd.DataFrame(records), trials_out, meta)
    write_parquet(curves, curves_out, meta)
    counts = pd.Series([r["status"] for r in records]).value_counts().to_dict()
    log.info("%s: done in %.1fs: %s", label, time.monotonic() - started, counts)
