"""Quasi-random metaparameter search (scrambled Halton), mapped onto a search space.

Trial i of a study is always the same point: points are a prefix-stable sequence drawn
from a seed that depends only on the study, so sharding or adding trials never moves one.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
from scipy.stats import qmc

from batch_science.config import (
    Study,
    config_hash,
    dataset_name,
    model_name,
    search_space,
    shard_trials,
    stable_seed,
    steps_for,
)
from batch_science.imports import source_digest
from batch_science.trials import MOMENTUM_OPTIMIZERS, OWN_METAPARAMETER_KEYS, OWN_METAPARAMETERS

# The dimensions of the quasi-random points, in this order; an optimizer's own metaparameters come
# last, so adding them moved no point of the other optimizers' studies.
SEARCHED_ORDER = (
    "learning_rate",
    "momentum",
    "decay_fraction",
    "end_factor",
    "label_smoothing",
    *OWN_METAPARAMETER_KEYS,
)


def _is_searched(spec) -> bool:
    return isinstance(spec, dict) and (
        ("values" in spec and len(spec["values"]) > 1) or ("min" in spec and spec["min"] != spec["max"])
    )


def _map_unit(u: np.ndarray, spec) -> np.ndarray:
    """Map uniform samples in [0, 1) onto one parameter's range."""
    if not isinstance(spec, dict):
        return np.full_like(u, float(spec))
    if "values" in spec:
        values = np.asarray(spec["values"], dtype=float)
        return values[np.minimum((u * len(values)).astype(int), len(values) - 1)]
    low, high, scale = spec["min"], spec["max"], spec.get("scale", "linear")
    if scale == "linear":
        return low + u * (high - low)
    if scale == "log":
        return np.exp(np.log(low) + u * (np.log(high) - np.log(low)))
    # reverse_log: 1 - value is log-uniform, so values crowd towards 1 as the paper's momentum.
    one_minus = np.exp(np.log(1 - high) + u * (np.log(1 - low) - np.log(1 - high)))
    return 1 - one_minus


def study_space(config: dict, study: Study) -> dict:
    """The optimizer's search space with the workload's extras merged over it, completed with the
    values a trial has for what its optimizer or schedule does not search."""
    space = search_space(config, study.workload, study.optimizer)
    if study.optimizer not in MOMENTUM_OPTIMIZERS:  # sgd, and Adam, whose beta1 is its own
        space["momentum"] = 0.0
    if space.get("schedule", "constant") == "constant":
        space["decay_fraction"], space["end_factor"] = 0.0, 1.0
    space.setdefault("label_smoothing", 0.0)
    return space


def sample_points(space: dict, n_trials: int, seed: int) -> dict[str, np.ndarray]:
    """The first n_trials quasi-random points of the space, as columns."""
    searched = [name for name in SEARCHED_ORDER if _is_searched(space.get(name))]
    if searched:
        unit = qmc.Halton(d=len(searched), scramble=True, seed=seed).random(n_trials)
    columns = {}
    for name in SEARCHED_ORDER:
        if name in searched:
            columns[name] = _map_unit(unit[:, searched.index(name)], space[name])
        else:
            spec = space.get(name, 0.0)
            fixed = (
                spec["values"][0]
                if isinstance(spec, dict) and "values" in spec
                else spec["min"]
                if isinstance(spec, dict)
                else spec
            )
            columns[name] = np.full(n_trials, float(fixed))
    return columns


def study_trials(config: dict, study: Study, trial_ids) -> list[dict]:
    """Metaparameters, seeds and budget of the given trials of a study."""
    trial_ids = list(trial_ids)
    space = study_space(config, study)
    search_seed = stable_seed(config["seed"], "search", study.workload, study.optimizer, study.batch_size)
    points = sample_points(space, max(trial_ids) + 1 if trial_ids else 0, search_seed)
    workload = config["workloads"][study.workload]
    budget = steps_for(workload["step_budget"], study.batch_size)
    eval_every = steps_for(workload["eval_every"], study.batch_size)
    trials = []
    own = OWN_METAPARAMETERS.get(study.optimizer, ())
    for trial_id in trial_ids:
        decay_fraction = float(points["decay_fraction"][trial_id])
        trials.append(
            {
                "trial_id": trial_id,
                "learning_rate": float(points["learning_rate"][trial_id]),
                "momentum": float(points["momentum"][trial_id]),
                "decay_steps": max(1, math.ceil(decay_fraction * budget)) if decay_fraction > 0 else 0,
                "end_factor": float(points["end_factor"][trial_id]),
                "label_smoothing": float(points["label_smoothing"][trial_id]),
                "seed": stable_seed(
                    config["seed"], "trial", study.workload, study.optimizer, study.batch_size, trial_id
                ),
                "step_budget": budget,
                "eval_every": eval_every,
                **{key: float(points[key][trial_id]) for key in own},
            }
        )
    return trials


def study_record(config: dict, study: Study) -> dict:
    """Columns shared by every trial of a study (its identity and target)."""
    workload = config["workloads"][study.workload]
    return {
        "study": config["study"],
        "workload": study.workload,
        "dataset": dataset_name(workload["dataset"]),
        "model": model_name(workload["model"]),
        "optimizer": study.optimizer,
        "batch_size": study.batch_size,
        "target_metric": workload["target"]["metric"],
        "target_value": float(workload["target"]["value"]),
        "target_direction": workload["target"]["direction"],
        "config_hash": config_hash(config),
    }


def trial_fingerprint(config: dict, study: Study, trial: dict) -> str:
    """Everything a trial's result depends on: a partial result is reused only if it matches.

    The trial carries its own budget and evaluation interval, resolved for its batch size."""
    workload = config["workloads"][study.workload]
    keys = {k: workload[k] for k in ("dataset", "model", "target", "nqm") if k in workload}
    engine = {k: config[k] for k in ("precision", "divergence_factor", "stop_at_target", "data_dir")}
    fingerprint = {"study": study.path, "trial": trial, "workload": keys, "engine": engine}
    sources = own_sources(workload, config.get("config_dir"))
    if sources:  # a user's model module, builder module or npz file: an edit to it reruns its trials
        fingerprint["sources"] = sources
    return json.dumps(fingerprint, sort_keys=True)


def own_sources(workload: dict, config_dir: str | None) -> dict:
    """Digests of the files a workload names by path (Keras model module, tfds builder module, npz)."""
    named = {
        "model": workload.get("model", {}).get("keras"),
        "builder": workload.get("dataset", {}).get("builder"),
        "npz": workload.get("dataset", {}).get("npz"),
    }
    return {key: source_digest(path, config_dir) for key, path in named.items() if path}


def shard_fingerprint(config: dict, study: Study, shard: int) -> str:
    """A short hash of the fingerprints of a tune job's trials: what its tables depend on, and
    nothing else (not the other studies, not runtime settings such as checkpoint_minutes). The tune
    rule's params, so a config edit reruns exactly the shards it changes; kept in the shard tables,
    so aggregate can refuse a shard made with another config."""
    trials = study_trials(config, study, shard_trials(config, shard, study.workload))
    joined = "\n".join(trial_fingerprint(config, study, trial) for trial in trials)
    return hashlib.sha256(joined.encode()).hexdigest()[:12]
