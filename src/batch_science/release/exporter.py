"""Write this project's trial and curve tables in the paper's release layout (layout.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from batch_science.config import Study
from batch_science.release.layout import (
    OPTIMIZER_NAMES,
    PARAMETERS,
    RELEASE_MEASUREMENTS,
    ReleaseError,
    search_space_to_parameter_configs,
)
from batch_science.tables import CURVE_KEYS, STUDY_KEYS, TRIAL_COLUMNS
from batch_science.trials import INFEASIBLE, MOMENTUM_OPTIMIZERS, NOT_REACHED, PRUNED, REACHED
from batch_science.tuning.search import study_space


def _json_value(value):
    """numpy scalars -> Python numbers, so json.dump writes them as the release does."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _study_json(trials: pd.DataFrame, config: dict | None) -> dict:
    first = trials.iloc[0]
    if "release_study" in trials.columns and isinstance(first["release_study"], str):
        return json.loads(first["release_study"])
    study = {
        "batch_size": int(first["batch_size"]),
        "dataset": first["dataset"],
        "early_stopping": _stopped_at_goal(trials, config),
        "model": first["model"],
        "optimizer": OPTIMIZER_NAMES[first["optimizer"]],
        "parameter_configs": {},
        "train_steps": int(first["step_budget"]),
    }
    if config and first["workload"] in config.get("workloads", {}):
        space = study_space(config, Study(first["workload"], first["optimizer"], int(first["batch_size"])))
        study["parameter_configs"] = search_space_to_parameter_configs(space, int(first["step_budget"]))
    return study


def _stopped_at_goal(trials: pd.DataFrame, config: dict | None) -> bool:
    """The release's `early_stopping` for one of our studies: whether its trials stopped at the goal
    (the config's stop_at_target; without a config, whether a trial that reached it stopped there).
    A reader then sees such a trial's `steps` below `train_steps`."""
    if config is not None and "stop_at_target" in config:
        return bool(config["stop_at_target"])
    reached = trials[trials["status"] == REACHED]
    return bool(
        ((reached["final_step"] == reached["steps_to_result"]) & (reached["final_step"] < reached["step_budget"])).any()
    )


def _metadata_json(trial: pd.Series) -> dict:
    # A pruned trial stopped before its budget: the release's INCOMPLETE (our own block keeps "pruned").
    status = {REACHED: "COMPLETE", NOT_REACHED: "COMPLETE", INFEASIBLE: "INFEASIBLE", PRUNED: "INCOMPLETE"}[
        trial["status"]
    ]
    unknown, absent = {}, []
    if isinstance(trial.get("release_metadata"), str):
        release = json.loads(trial["release_metadata"])
        names, extra = release["parameters"], release["extra"]
        unknown, absent = release.get("unknown_parameters", {}), release.get("absent", [])
    else:
        names = ["learning_rate", "end_learning_rate_factor", "label_smoothing"]
        if trial["optimizer"] in MOMENTUM_OPTIMIZERS:
            names.append("momentum")
        if trial["decay_steps"] > 0:
            names.append("learning_rate_decay_steps")
        extra = {}
    columns = {release: ours for release, (ours, _) in PARAMETERS.items()}
    parameters = {
        name: unknown[name] if name in unknown else _json_value(trial[columns[name]]) for name in sorted(names)
    }
    meta = {
        **extra,
        "parameters": parameters,
        "status": status,
        "steps": int(trial["final_step"]),
        "trial_id": int(trial["trial_id"]),
    }
    for key in absent:  # an imported INFEASIBLE trial whose metadata.json had only its status
        del meta[key]
    if not isinstance(trial.get("release_metadata"), str):
        # Our own columns the layout has no place for, so that import gives back the same tables.
        meta["batch_science"] = {
            "workload": trial["workload"],
            "status": trial["status"],
            "seed": int(trial["seed"]),
            "eval_every": int(trial["eval_every"]),
            "config_hash": trial["config_hash"],
            "best_val_metric": _json_value(trial["best_val_metric"]),
            "best_step": int(trial["best_step"]),
            "target": {
                "metric": trial["target_metric"],
                "value": float(trial["target_value"]),
                "direction": trial["target_direction"],
            },
        }
    return meta


def _measurements(curve: pd.DataFrame, trial: pd.Series) -> pd.DataFrame | None:
    """A trial's measurements.csv, or None where the imported trial had none."""
    frame = curve.drop(columns=CURVE_KEYS).rename(columns=RELEASE_MEASUREMENTS)
    if isinstance(trial.get("release_measurement_columns"), str):
        columns = json.loads(trial["release_measurement_columns"])
        if columns is None:
            return None
    else:
        columns = ["step", *[c for c in RELEASE_MEASUREMENTS.values() if c in frame.columns]]
    return frame[columns]


def _study_folders(trials: pd.DataFrame) -> dict[tuple, str]:
    """(workload, optimizer, batch_size) -> relative study folder."""
    folders = {}
    pairs = trials.groupby(["dataset", "model"])["workload"].nunique()
    for (workload, optimizer, batch_size), study in trials.groupby(STUDY_KEYS):
        first = study.iloc[0]
        if isinstance(first.get("release_path"), str):
            folders[(workload, optimizer, batch_size)] = first["release_path"]
            continue
        # dataset/model as the release; a workload folder when two workloads share dataset and model.
        top = first["dataset"] if pairs[(first["dataset"], first["model"])] == 1 else workload
        folders[(workload, optimizer, batch_size)] = f"{top}/{first['model']}/{OPTIMIZER_NAMES[optimizer]}/{batch_size}"
    if len(set(folders.values())) != len(folders):
        raise ReleaseError("two studies map to the same release folder; export them separately")
    return folders


def write_release(
    trials: pd.DataFrame, curves: pd.DataFrame, out_dir: str | Path, config: dict | None = None
) -> list[Path]:
    """Write trial and curve tables in the release layout; returns the study folders written."""
    out_dir = Path(out_dir)
    missing = [c for c in TRIAL_COLUMNS if c not in trials.columns and c != "study"]
    if missing:
        raise ReleaseError(f"trials table: missing column(s) {', '.join(missing)}")
    unreleased = sorted(o for o in trials["optimizer"].unique() if OPTIMIZER_NAMES.get(o) is None)
    if unreleased:
        raise ReleaseError(
            f"trials table: optimizer {', '.join(unreleased)} has no name in the paper's release layout (its studies "
            "and parameters are sgd, momentum and nesterov_momentum only); export the other optimizers' trials"
        )
    curves_by_trial = {key: frame for key, frame in curves.groupby(CURVE_KEYS)}
    written = []
    for key, folder in _study_folders(trials).items():
        study = trials[
            (trials["workload"] == key[0]) & (trials["optimizer"] == key[1]) & (trials["batch_size"] == key[2])
        ]
        study_dir = out_dir / folder
        study_dir.mkdir(parents=True, exist_ok=True)
        with open(study_dir / "study.json", "w") as f:
            json.dump(_study_json(study, config), f, indent=2, sort_keys=True)
        for _, trial in study.sort_values("trial_id").iterrows():
            trial_dir = study_dir / str(int(trial["trial_id"]))
            trial_dir.mkdir(exist_ok=True)
            with open(trial_dir / "metadata.json", "w") as f:
                json.dump(_metadata_json(trial), f, indent=2, sort_keys=True)
            curve = curves_by_trial.get((*key, trial["trial_id"]))
            if curve is None and trial["status"] != INFEASIBLE:
                raise ReleaseError(f"curves table: no curve for trial {trial['trial_id']} of {'/'.join(map(str, key))}")
            if curve is None:  # an infeasible trial with no evaluation
                curve = pd.DataFrame(columns=[*curves.columns])
            measurements = _measurements(curve.sort_values("step"), trial)
            if measurements is not None:
                measurements.to_csv(trial_dir / "measurements.csv", index=False)
        written.append(study_dir)
    return written
