"""The paper's data release layout <-> this project's trial and curve tables.

Layout (google-research/batch_science README):

    <dataset>/<model>/<optimizer>/<batch_size>/study.json
    <dataset>/<model>/<optimizer>/<batch_size>/<trial_id>/metadata.json
    <dataset>/<model>/<optimizer>/<batch_size>/<trial_id>/measurements.csv

A few workloads sit one folder deeper (`mnist_subsets/mnist_13750/...`). `read_release` turns
a release folder into the trial and curve tables a tune job writes (steps to result computed
by `analysis.steps.trial_steps_to_result`), `write_release` writes our tables in that layout.
A study folder that is malformed or partial is reported by path and skipped whole (or, with
`strict=True`, refused), never mixed in part. Everything a table cannot hold in its own
columns travels in `release_*` columns (trials) or under the measurement's own column name
(curves), and in a `batch_science` block of metadata.json, so both round trips are lossless
for COMPLETE and INFEASIBLE trials. INCOMPLETE trials are left out, as the paper's analysis
ignores them; how many is reported per study.

Command line (see docs/paper.md):

    python -m batch_science.release import RELEASE_DIR --study paper_release
    python -m batch_science.release export results/<study> OUT_DIR
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import logging
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from batch_science.analysis.steps import METRIC_COLUMNS, trial_steps_to_result

log = logging.getLogger(__name__)

# Our optimizer names <-> the release's.
OPTIMIZER_NAMES = {"sgd": "sgd", "momentum": "momentum", "nesterov": "nesterov_momentum"}
RELEASE_OPTIMIZERS = {release: ours for ours, release in OPTIMIZER_NAMES.items()}
# Release measurement columns <-> our curve columns; any other column is kept under its own name.
MEASUREMENT_COLUMNS = {
    "train/cross_entropy_error": "train_cross_entropy",
    "val/cross_entropy_error": "val_cross_entropy",
    "val/classification_error": "val_error",
}
CURVE_COLUMNS = {ours: release for release, ours in MEASUREMENT_COLUMNS.items()}
# Release metaparameter names <-> our trial columns, with the value a trial has when it is not searched.
PARAMETERS = {
    "learning_rate": ("learning_rate", None),
    "momentum": ("momentum", 0.0),
    "learning_rate_decay_steps": ("decay_steps", 0),
    "end_learning_rate_factor": ("end_factor", 1.0),
    "label_smoothing": ("label_smoothing", 0.0),
}
TRIAL_COLUMNS = [
    "study", "workload", "dataset", "model", "optimizer", "batch_size", "trial_id", "learning_rate", "momentum",
    "decay_steps", "end_factor", "label_smoothing", "seed", "step_budget", "eval_every", "effective_learning_rate",
    "status", "steps_to_result", "best_val_metric", "best_step", "final_step", "target_metric", "target_value",
    "target_direction", "config_hash",
]
CURVE_KEYS = ["workload", "optimizer", "batch_size", "trial_id"]
RELEASE_COLUMNS = ["release_path", "release_study", "release_metadata", "release_measurement_columns"]
# Goals of the paper's Figure 1 by release dataset folder, then (dataset, model) (PAPER.md,
# "Goals used for the paper's Figure 1"). Others must be given with --target.
PAPER_TARGETS = {
    "mnist": ("error", 0.01),
    "fashion_mnist": ("error", 0.1),
    "cifar_10": ("error", 0.3),
    ("imagenet", "resnet_50"): ("error", 0.25),
    ("imagenet", "vgg_11"): ("error", 0.35),
    "lm1b": ("cross_entropy", 3.9),
    "common_crawl": ("cross_entropy", 3.9),
}
SKIPPED, REFUSED = "skipped", "refused"


class ReleaseError(ValueError):
    """A release folder or table that cannot be read or written; the message names the path."""


@dataclass(frozen=True)
class Target:
    metric: str  # "error" or "cross_entropy", as the config's target.metric
    value: float
    direction: str = "minimize"


@dataclass
class ReleaseTables:
    trials: pd.DataFrame
    curves: pd.DataFrame
    problems: list[str] = field(default_factory=list)  # "path: reason", one per study left out
    incomplete: dict[str, int] = field(default_factory=dict)  # study path -> INCOMPLETE trials left out


# -- reading -------------------------------------------------------------------------------

# The workflow's rules that read only tables: an imported study runs these and never trains.
ANALYSIS_RULES = (
    "aggregate", "fit", "plot_scaling", "plot_variants", "plot_learning_rate", "plot_metaparameters",
    "plot_solution_quality", "tuning_budget", "plot_tuning_budget", "report_tables", "provenance", "summary", "figures", "all",
)

def _read_json(path: Path) -> dict:
    try:
        with open(path) as f:
            value = json.load(f)
    except FileNotFoundError:
        raise ReleaseError(f"{path}: missing") from None
    except json.JSONDecodeError as error:
        raise ReleaseError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(value, dict):
        raise ReleaseError(f"{path}: expected a JSON object")
    return value


def _require(mapping: dict, keys, path: Path) -> None:
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ReleaseError(f"{path}: missing key(s) {', '.join(missing)}")


# Release dataset folders named as config/paper.yaml names its datasets / workloads.
DATASET_FOLDER_NAMES = {"cifar_10": "cifar10"}


def _workload_name(parts: tuple[str, ...]) -> str:
    """Workload name from the folders above optimizer/batch_size, as config/paper.yaml names them:
    mnist/simple_cnn_base -> mnist_simple_cnn_base, mnist_subsets/mnist_13750/simple_cnn_base ->
    mnist_13750_simple_cnn_base, cifar_10/resnet_8 -> cifar10_resnet_8."""
    kept = [DATASET_FOLDER_NAMES.get(p, p) for p in parts if not p.endswith("_subsets")]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", "_".join(kept))


def default_target(dataset_dir: str, model: str) -> Target | None:
    """The paper's Figure 1 goal for a release workload folder, if the paper states one."""
    base = dataset_dir.split("/")[-1].split("_")[0]  # mnist_subsets/mnist_13750 -> mnist
    for key in ((dataset_dir, model), dataset_dir, (base, model), base):
        if key in PAPER_TARGETS:
            return Target(*PAPER_TARGETS[key])
    return None


def _parse_target(text: str) -> Target:
    """'error<0.01', 'cross_entropy<3.9' or 'error>0.5' -> Target."""
    match = re.fullmatch(r"\s*(error|cross_entropy)\s*([<>])\s*([-+0-9.eE]+)\s*", text)
    if not match:
        raise ReleaseError(f"target '{text}': expected METRIC<VALUE or METRIC>VALUE with METRIC error or cross_entropy")
    metric, sign, value = match.groups()
    return Target(metric, float(value), "minimize" if sign == "<" else "maximize")


def _trial_dirs(study_dir: Path) -> list[Path]:
    dirs = [p for p in study_dir.iterdir() if p.is_dir()]
    bad = [p.name for p in dirs if not p.name.isdigit()]
    if bad:
        raise ReleaseError(f"{study_dir}: trial folder names must be integers, found {bad[:3]}")
    return sorted(dirs, key=lambda p: int(p.name))


def _read_measurements(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ReleaseError(f"{path}: missing") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ReleaseError(f"{path}: not a readable CSV ({' '.join(str(error).split())[:120]})") from None
    if "step" not in frame.columns:
        raise ReleaseError(f"{path}: no 'step' column (columns: {', '.join(frame.columns)})")
    if frame["step"].isna().any() or not pd.api.types.is_integer_dtype(frame["step"]):
        raise ReleaseError(f"{path}: column 'step' must hold whole numbers")
    if frame["step"].duplicated().any():
        raise ReleaseError(f"{path}: repeated steps {sorted(frame['step'][frame['step'].duplicated()].unique())[:3]}")
    bad = [c for c in frame.columns if c != "step" and not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ReleaseError(f"{path}: non-numeric measurement column(s) {', '.join(bad)}")
    return frame


def _eval_every(steps: np.ndarray) -> int:
    """Evaluations are not evenly spaced in the release: the median interval stands for eval_every."""
    gaps = np.diff(np.sort(steps))
    return int(np.median(gaps)) if len(gaps) else 0


def read_study(study_dir: Path, root: Path, study_name: str, target: Target | None) -> tuple[list[dict], list[pd.DataFrame], int]:
    """(trial records, curve frames, INCOMPLETE trials left out) of one study folder; ReleaseError if malformed."""
    relative = study_dir.relative_to(root).parts
    if len(relative) < 4:
        raise ReleaseError(f"{study_dir}: expected <dataset>/<model>/<optimizer>/<batch_size>/study.json below {root}")
    study_path = study_dir / "study.json"
    study = _read_json(study_path)
    _require(study, ["batch_size", "dataset", "model", "optimizer"], study_path)
    if RELEASE_OPTIMIZERS.get(study["optimizer"]) is None:
        raise ReleaseError(f"{study_path}: unknown optimizer '{study['optimizer']}' (known: {', '.join(RELEASE_OPTIMIZERS)})")
    if str(study["batch_size"]) != relative[-1]:
        raise ReleaseError(f"{study_path}: batch_size {study['batch_size']} does not match its folder '{relative[-1]}'")
    if study["optimizer"] != relative[-2]:
        raise ReleaseError(f"{study_path}: optimizer '{study['optimizer']}' does not match its folder '{relative[-2]}'")
    trial_dirs = _trial_dirs(study_dir)
    if not trial_dirs:
        raise ReleaseError(f"{study_dir}: no trial folders")
    if target is None:
        # Studies this project exported carry their target in each trial's batch_science block.
        ours = _read_json(trial_dirs[0] / "metadata.json").get("batch_science", {})
        target = Target(**ours["target"]) if "target" in ours else None
    if target is None:
        raise ReleaseError(f"{study_dir}: no target known for this workload (give one with --target)")
    metric_column = CURVE_COLUMNS[METRIC_COLUMNS[target.metric]]
    optimizer = RELEASE_OPTIMIZERS[study["optimizer"]]
    batch_size = int(study["batch_size"])
    workload = _workload_name(relative[:-2])
    study_hash = hashlib.sha256(json.dumps(study, sort_keys=True).encode()).hexdigest()[:12]

    records, curves, incomplete = [], [], 0
    for trial_dir in trial_dirs:
        meta_path = trial_dir / "metadata.json"
        meta = _read_json(meta_path)
        _require(meta, ["parameters", "status", "steps", "trial_id"], meta_path)
        if str(meta["trial_id"]) != trial_dir.name:
            raise ReleaseError(f"{meta_path}: trial_id {meta['trial_id']} does not match its folder '{trial_dir.name}'")
        if meta["status"] not in ("COMPLETE", "INCOMPLETE", "INFEASIBLE"):
            raise ReleaseError(f"{meta_path}: status '{meta['status']}' is not COMPLETE, INCOMPLETE or INFEASIBLE")
        if meta["status"] == "INCOMPLETE":
            incomplete += 1
            continue
        parameters = meta["parameters"]
        if not isinstance(parameters, dict) or "learning_rate" not in parameters:
            raise ReleaseError(f"{meta_path}: parameters must be an object with a learning_rate")
        unknown = sorted(set(parameters) - set(PARAMETERS))
        if unknown:
            raise ReleaseError(f"{meta_path}: unknown parameter(s) {', '.join(unknown)} (known: {', '.join(PARAMETERS)})")
        measurements = _read_measurements(trial_dir / "measurements.csv")
        if metric_column not in measurements.columns:
            raise ReleaseError(f"{trial_dir / 'measurements.csv'}: no '{metric_column}' column for target metric '{target.metric}'")

        curve = measurements.rename(columns=MEASUREMENT_COLUMNS)
        for column in ("train_cross_entropy", "val_cross_entropy", "val_error"):
            if column not in curve.columns:
                curve[column] = math.nan
        ours_columns = ["step", "train_cross_entropy", "val_cross_entropy", "val_error"]
        curve = curve[[*ours_columns, *[c for c in curve.columns if c not in ours_columns]]]
        trial_id = int(meta["trial_id"])
        for key, value in reversed(list(zip(CURVE_KEYS, (workload, optimizer, batch_size, trial_id)))):
            curve.insert(0, key, value)

        ours = meta.get("batch_science", {})
        values = {column: parameters.get(name, default) for name, (column, default) in PARAMETERS.items()}
        metric = curve[METRIC_COLUMNS[target.metric]].to_numpy(float)
        finite = np.isfinite(metric)
        if "best_val_metric" in ours:
            best_metric, best_step = float(ours["best_val_metric"]), int(ours["best_step"])
        elif finite.any():
            best = int(np.flatnonzero(finite)[np.argmin(metric[finite]) if target.direction == "minimize" else np.argmax(metric[finite])])
            best_metric, best_step = float(metric[best]), int(curve["step"].iloc[best])
        else:
            best_metric, best_step = math.nan, 0
        feasible = meta["status"] == "COMPLETE"
        steps = trial_steps_to_result(curve, target.metric, target.value, target.direction) if feasible else math.nan
        extra_meta = {k: v for k, v in meta.items() if k not in ("parameters", "status", "steps", "trial_id", "batch_science")}
        records.append(
            {
                "study": study_name,
                "workload": ours.get("workload", workload),
                "dataset": study["dataset"],
                "model": study["model"],
                "optimizer": optimizer,
                "batch_size": batch_size,
                "trial_id": trial_id,
                "learning_rate": float(values["learning_rate"]),
                "momentum": float(values["momentum"]),
                "decay_steps": int(values["decay_steps"]),
                "end_factor": float(values["end_factor"]),
                "label_smoothing": float(values["label_smoothing"]),
                "seed": int(ours.get("seed", -1)),
                "step_budget": int(study.get("train_steps", meta["steps"])),
                "eval_every": int(ours.get("eval_every", _eval_every(curve["step"].to_numpy()))),
                "effective_learning_rate": float(values["learning_rate"]) / (1 - float(values["momentum"])),
                "status": ("reached" if math.isfinite(steps) else "not_reached") if feasible else "infeasible",
                "steps_to_result": steps,
                "best_val_metric": best_metric,
                "best_step": best_step,
                "final_step": int(meta["steps"]),
                "target_metric": target.metric,
                "target_value": float(target.value),
                "target_direction": target.direction,
                "config_hash": ours.get("config_hash", study_hash),
                "release_path": "/".join(relative),
                "release_study": json.dumps(study, sort_keys=True),
                "release_metadata": json.dumps({"extra": extra_meta, "parameters": sorted(parameters)}, sort_keys=True),
                "release_measurement_columns": json.dumps(list(measurements.columns)),
            }
        )
        if ours.get("workload"):
            curve["workload"] = ours["workload"]
        curves.append(curve)
    return records, curves, incomplete


def read_release(
    root: str | Path,
    study_name: str = "paper_release",
    targets: dict[str, Target] | None = None,
    strict: bool = False,
    first_complete: int | None = None,
    include: list[str] | None = None,
) -> ReleaseTables:
    """All study folders under `root` as trial and curve tables.

    `targets` maps a workload name (e.g. mnist_simple_cnn_base) or a release dataset folder
    (e.g. mnist, mnist_subsets/mnist_13750) to its goal; the paper's Figure 1 goals are used
    otherwise. A malformed or partial study is skipped and listed in `problems`, or with
    `strict` refused with ReleaseError. `first_complete` keeps only the first N COMPLETE
    trials by trial id (and the INFEASIBLE ones among them), as the paper's plots did.
    `include` keeps only study folders matching one of these shell patterns, relative to
    `root` (e.g. "mnist/simple_cnn_base/*/*"): the whole release holds 71 million measurements.
    """
    root = Path(root)
    if not root.is_dir():
        raise ReleaseError(f"{root}: not a folder")
    targets = targets or {}
    study_dirs = sorted({p.parent for p in root.rglob("study.json")})
    if include:
        study_dirs = [d for d in study_dirs if any(fnmatch.fnmatchcase("/".join(d.relative_to(root).parts), pattern) for pattern in include)]
        if not study_dirs:
            raise ReleaseError(f"{root}: no study folder matches {', '.join(include)}")
    # A study folder whose study.json is missing is partial: it has trial folders with metadata.json.
    orphans = sorted({p.parent.parent for p in root.rglob("metadata.json")} - set(study_dirs))
    if not study_dirs and not orphans:
        raise ReleaseError(f"{root}: no study.json below this folder (expected <dataset>/<model>/<optimizer>/<batch_size>/study.json)")
    problems = [f"{d / 'study.json'}: missing (study folder has trial folders)" for d in orphans]
    records, curves, incomplete = [], [], {}
    for study_dir in study_dirs:
        relative = study_dir.relative_to(root).parts
        dataset_dir, model = "/".join(relative[:-3]), relative[-3] if len(relative) >= 3 else ""
        target = targets.get(_workload_name(relative[:-2])) or targets.get(dataset_dir) or default_target(dataset_dir, model)
        try:
            study_records, study_curves, n_incomplete = read_study(study_dir, root, study_name, target)
        except ReleaseError as error:
            problems.append(str(error))
            continue
        if first_complete:
            study_records, study_curves = _first_complete(study_records, study_curves, first_complete)
        records += study_records
        curves += study_curves
        if n_incomplete:
            incomplete["/".join(relative)] = n_incomplete
    if strict and problems:
        raise ReleaseError(f"{len(problems)} malformed or partial study folder(s), first: {problems[0]}")
    for problem in problems:
        log.warning("%s: study left out", problem)
    trials = pd.DataFrame(records, columns=TRIAL_COLUMNS + RELEASE_COLUMNS)
    curves_table = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=[*CURVE_KEYS, "step", "train_cross_entropy", "val_cross_entropy", "val_error"])
    trials = trials.sort_values(CURVE_KEYS, ignore_index=True)
    curves_table = curves_table.sort_values([*CURVE_KEYS, "step"], ignore_index=True)
    return ReleaseTables(trials, curves_table, problems, incomplete)


def _first_complete(records, curves, n):
    kept, complete = [], 0
    for record, curve in zip(records, curves):
        if complete >= n:
            break
        kept.append((record, curve))
        complete += record["status"] != "infeasible"
    return [r for r, _ in kept], [c for _, c in kept]


# -- writing -------------------------------------------------------------------------------

def _json_value(value):
    """numpy scalars -> Python numbers, so json.dump writes them as the release does."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def search_space_to_parameter_configs(space: dict, step_budget: int) -> dict:
    """A config search space (after search.study_space) as the release's parameter_configs."""
    configs = {}
    scales = {"linear": "LINEAR_SCALE", "log": "LOG_SCALE", "reverse_log": "REVERSE_LOG_SCALE"}
    names = {"learning_rate": "learning_rate", "momentum": "momentum", "end_factor": "end_learning_rate_factor", "label_smoothing": "label_smoothing"}
    for ours, release in names.items():
        spec = space.get(ours)
        if isinstance(spec, dict) and "values" in spec:
            configs[release] = {"feasible_points": [float(v) for v in spec["values"]], "type": "DISCRETE"}
        elif isinstance(spec, dict) and "min" in spec:
            configs[release] = {"max_value": spec["max"], "min_value": spec["min"], "scale": scales[spec.get("scale", "linear")], "type": "DOUBLE"}
    fraction = space.get("decay_fraction")
    if isinstance(fraction, dict) and "min" in fraction and space.get("schedule") == "linear_decay":
        configs["learning_rate_decay_steps"] = {
            "max_value": math.ceil(fraction["max"] * step_budget), "min_value": math.ceil(fraction["min"] * step_budget),
            "scale": "", "type": "INTEGER",
        }
    return configs


def parameter_configs_to_search_space(configs: dict, step_budget: int) -> dict:
    """The release's parameter_configs as a config search space (the inverse of the function above)."""
    scales = {"LINEAR_SCALE": "linear", "LOG_SCALE": "log", "REVERSE_LOG_SCALE": "reverse_log", "": "linear"}
    names = {"learning_rate": "learning_rate", "momentum": "momentum", "end_learning_rate_factor": "end_factor", "label_smoothing": "label_smoothing"}
    space: dict = {}
    for release, ours in names.items():
        spec = configs.get(release)
        if not spec:
            continue
        if spec.get("type") == "DISCRETE":
            space[ours] = {"values": [float(v) for v in spec["feasible_points"]]}
        else:
            space[ours] = {"min": float(spec["min_value"]), "max": float(spec["max_value"]), "scale": scales[spec.get("scale", "")]}
    decay = configs.get("learning_rate_decay_steps")
    if decay and step_budget > 0:
        space["schedule"] = "linear_decay"
        space["decay_fraction"] = {"min": decay["min_value"] / step_budget, "max": decay["max_value"] / step_budget}
        space.setdefault("end_factor", 1.0)
    return space


def _study_json(trials: pd.DataFrame, config: dict | None) -> dict:
    first = trials.iloc[0]
    if "release_study" in trials.columns and isinstance(first["release_study"], str):
        return json.loads(first["release_study"])
    study = {
        "batch_size": int(first["batch_size"]),
        "dataset": first["dataset"],
        "early_stopping": False,
        "model": first["model"],
        "optimizer": OPTIMIZER_NAMES[first["optimizer"]],
        "parameter_configs": {},
        "train_steps": int(first["step_budget"]),
    }
    if config and first["workload"] in config.get("workloads", {}):
        from batch_science.config import Study
        from batch_science.search import study_space

        space = study_space(config, Study(first["workload"], first["optimizer"], int(first["batch_size"])))
        study["parameter_configs"] = search_space_to_parameter_configs(space, int(first["step_budget"]))
    return study


def _metadata_json(trial: pd.Series) -> dict:
    status = {"reached": "COMPLETE", "not_reached": "COMPLETE", "infeasible": "INFEASIBLE"}[trial["status"]]
    if isinstance(trial.get("release_metadata"), str):
        release = json.loads(trial["release_metadata"])
        names, extra = release["parameters"], release["extra"]
    else:
        names = ["learning_rate", "end_learning_rate_factor", "label_smoothing"]
        if trial["optimizer"] != "sgd":
            names.append("momentum")
        if trial["decay_steps"] > 0:
            names.append("learning_rate_decay_steps")
        extra = {}
    columns = {release: ours for release, (ours, _) in PARAMETERS.items()}
    parameters = {name: _json_value(trial[columns[name]]) for name in sorted(names)}
    meta = {**extra, "parameters": parameters, "status": status, "steps": int(trial["final_step"]), "trial_id": int(trial["trial_id"])}
    if not isinstance(trial.get("release_metadata"), str):
        # Our own columns the layout has no place for, so that import gives back the same tables.
        meta["batch_science"] = {
            "workload": trial["workload"], "seed": int(trial["seed"]), "eval_every": int(trial["eval_every"]),
            "config_hash": trial["config_hash"],
            "best_val_metric": _json_value(trial["best_val_metric"]), "best_step": int(trial["best_step"]),
            "target": {"metric": trial["target_metric"], "value": float(trial["target_value"]), "direction": trial["target_direction"]},
        }
    return meta


def _measurements(curve: pd.DataFrame, trial: pd.Series) -> pd.DataFrame:
    frame = curve.drop(columns=CURVE_KEYS).rename(columns=CURVE_COLUMNS)
    if isinstance(trial.get("release_measurement_columns"), str):
        columns = json.loads(trial["release_measurement_columns"])
    else:
        columns = ["step", *[c for c in CURVE_COLUMNS.values() if c in frame.columns]]
    return frame[columns]


def _study_folders(trials: pd.DataFrame) -> dict[tuple, str]:
    """(workload, optimizer, batch_size) -> relative study folder."""
    folders = {}
    pairs = trials.groupby(["dataset", "model"])["workload"].nunique()
    for (workload, optimizer, batch_size), study in trials.groupby(["workload", "optimizer", "batch_size"]):
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


def write_release(trials: pd.DataFrame, curves: pd.DataFrame, out_dir: str | Path, config: dict | None = None) -> list[Path]:
    """Write trial and curve tables in the release layout; returns the study folders written."""
    out_dir = Path(out_dir)
    missing = [c for c in TRIAL_COLUMNS if c not in trials.columns and c != "study"]
    if missing:
        raise ReleaseError(f"trials table: missing column(s) {', '.join(missing)}")
    curves_by_trial = {key: frame for key, frame in curves.groupby(CURVE_KEYS)}
    written = []
    for key, folder in _study_folders(trials).items():
        study = trials[(trials["workload"] == key[0]) & (trials["optimizer"] == key[1]) & (trials["batch_size"] == key[2])]
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
            if curve is None:
                raise ReleaseError(f"curves table: no curve for trial {trial['trial_id']} of {'/'.join(map(str, key))}")
            _measurements(curve.sort_values("step"), trial).to_csv(trial_dir / "measurements.csv", index=False)
        written.append(study_dir)
    return written


# -- importing as a study the pipeline can aggregate, fit and plot -----------------------------

RELEASE_MODELS = {
    "simple_cnn_base": {"name": "simple_cnn"},
    "simple_cnn_narrow": {"name": "simple_cnn", "filters": [16, 32], "dense": 512},
    "simple_cnn_wide": {"name": "simple_cnn", "filters": [64, 128], "dense": 2048},
    "resnet_8": {"name": "resnet_8"},
    "resnet_50": {"name": "resnet_50"},
    "vgg_11": {"name": "vgg_11"},
    "lstm": {"name": "lstm_lm"},
    "transformer_base": {"name": "transformer_lm"},
}


def release_model_spec(model: str) -> dict:
    """Our model config block for a release model name (fc_W_W_W -> fully_connected)."""
    if re.fullmatch(r"fc(_\d+)+", model):
        widths = [int(w) for w in model.split("_")[1:]]
        if len(set(widths)) == 1:
            return {"name": "fully_connected", "depth": len(widths), "width": widths[0]}
        return {"name": "mlp", "hidden": widths}
    if model.startswith("transformer_"):
        return {"name": "transformer_lm", "size": model.removeprefix("transformer_")}
    return RELEASE_MODELS.get(model, {"name": model})


def study_config(tables: ReleaseTables, study_name: str) -> dict:
    """A config under which the imported tables are a finished study (tune is never run on it)."""
    trials = tables.trials
    workloads, spaces = {}, {}
    for workload, rows in trials.groupby("workload"):
        first = rows.iloc[0]
        budgets = rows.groupby("batch_size")["step_budget"].first()
        evals = rows.groupby("batch_size")["eval_every"].median()
        workloads[workload] = {
            "dataset": {"name": str(first["dataset"])},
            "model": release_model_spec(str(first["model"])),
            "target": {"metric": first["target_metric"], "value": float(first["target_value"]), "direction": first["target_direction"]},
            "step_budget": {str(b): max(1, int(s) if s > 0 else int(rows[rows["batch_size"] == b]["final_step"].max())) for b, s in budgets.items()},
            "eval_every": {str(b): max(1, int(e)) for b, e in evals.items()},
            "batch_sizes": sorted(int(b) for b in rows["batch_size"].unique()),
            "optimizers": sorted(rows["optimizer"].unique()),
        }
        for optimizer, study in rows.groupby("optimizer"):
            if optimizer in spaces:
                continue
            record = json.loads(study.iloc[0]["release_study"]) if isinstance(study.iloc[0].get("release_study"), str) else {}
            space = parameter_configs_to_search_space(record.get("parameter_configs", {}), int(study.iloc[0]["step_budget"]))
            space.setdefault("learning_rate", {"min": float(rows["learning_rate"].min()), "max": float(rows["learning_rate"].max()), "scale": "log"})
            if optimizer != "sgd":
                space.setdefault("momentum", {"min": 0.0, "max": 0.999, "scale": "reverse_log"})
            else:
                space.pop("momentum", None)
            spaces[optimizer] = space
    trials_per_study = int(trials.groupby(CURVE_KEYS[:3]).size().max())
    return {
        "study": study_name,
        "trials": trials_per_study,
        "trials_per_job": trials_per_study,
        "search_spaces": spaces,
        "workloads": workloads,
    }


def import_release(release_dir, study_name: str, results_dir="results", targets=None, strict=False, first_complete=None, include=None) -> Path:
    """Import a release folder as results/<study>/: shard tables, aggregated tables and a config."""
    import yaml

    from batch_science.aggregate import aggregate_study
    from batch_science.io import write_parquet

    tables = read_release(release_dir, study_name, targets, strict, first_complete, include)
    if tables.trials.empty:
        raise ReleaseError(f"{release_dir}: no study could be imported ({len(tables.problems)} left out)")
    out = Path(results_dir) / study_name
    config = study_config(tables, study_name)
    meta = {"source": str(Path(release_dir).resolve()), "imported_by": "batch_science.release"}
    trial_files, curve_files = [], []
    empty_trials, empty_curves = tables.trials.iloc[0:0], tables.curves.iloc[0:0]
    for workload, spec in config["workloads"].items():
        for optimizer in spec["optimizers"]:
            for batch_size in spec["batch_sizes"]:
                path = f"{workload}/{optimizer}/b{batch_size}/shard0.parquet"
                pick = (tables.trials["workload"] == workload) & (tables.trials["optimizer"] == optimizer) & (tables.trials["batch_size"] == batch_size)
                pick_curves = (tables.curves["workload"] == workload) & (tables.curves["optimizer"] == optimizer) & (tables.curves["batch_size"] == batch_size)
                # The config grid is workload x optimizers x batch sizes; a study the release lacks is an empty table.
                write_parquet(tables.trials[pick] if pick.any() else empty_trials, out / "trials" / path, meta)
                write_parquet(tables.curves[pick_curves] if pick_curves.any() else empty_curves, out / "curves" / path, meta)
                trial_files.append(out / "trials" / path)
                curve_files.append(out / "curves" / path)
    aggregate_study(trial_files, curve_files, out / "trials.parquet", out / "curves.parquet", out / "steps_to_result.csv")
    config["noise_scale"] = {"enabled": False}  # no data to train on
    with open(out / "config.yaml", "w") as f:
        f.write(f"# Imported from {meta['source']} by python -m batch_science.release; tune never runs on it.\n")
        yaml.safe_dump(config, f, sort_keys=False)
    return out


def _targets_from_args(items) -> dict[str, Target]:
    targets = {}
    for item in items or []:
        if "=" not in item:
            raise ReleaseError(f"--target '{item}': expected WORKLOAD_OR_DATASET=METRIC<VALUE, e.g. mnist=error<0.01")
        name, text = item.split("=", 1)
        targets[name] = _parse_target(text)
    return targets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batch_science.release", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    importing = commands.add_parser("import", help="import a release folder as results/<study>/")
    importing.add_argument("release_dir")
    importing.add_argument("--study", default="paper_release", help="study name (results/<study>/)")
    importing.add_argument("--results", default="results", help="results folder")
    importing.add_argument("--target", action="append", help="WORKLOAD_OR_DATASET=METRIC<VALUE, e.g. mnist=error<0.01 (repeatable)")
    importing.add_argument("--first-complete", type=int, default=None, help="keep the first N COMPLETE trials per study, as the paper's plots (100)")
    importing.add_argument("--strict", action="store_true", help="refuse the whole import if any study folder is malformed")
    importing.add_argument("--include", action="append", help="only study folders matching this pattern, e.g. 'mnist/simple_cnn_base/*/*' (repeatable)")
    exporting = commands.add_parser("export", help="export results/<study>/ trials and curves in the release layout")
    exporting.add_argument("study_dir", help="results/<study> (with trials.parquet and curves.parquet)")
    exporting.add_argument("out_dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.command == "import":
            out = import_release(args.release_dir, args.study, args.results, _targets_from_args(args.target), args.strict, args.first_complete, args.include)
            print(f"imported into {out}; aggregate, fit and figures with:\n  snakemake --configfile {out}/config.yaml "
                  f"--allowed-rules {' '.join(ANALYSIS_RULES)} --cores 1")
        else:
            study_dir = Path(args.study_dir)
            for name in ("trials.parquet", "curves.parquet"):
                if not (study_dir / name).exists():
                    raise ReleaseError(f"{study_dir / name}: missing (run the pipeline's aggregate step first)")
            from batch_science.io import read_parquet_metadata

            meta = read_parquet_metadata(study_dir / "trials.parquet")
            config = json.loads(meta["config"]) if "config" in meta else None
            written = write_release(pd.read_parquet(study_dir / "trials.parquet"), pd.read_parquet(study_dir / "curves.parquet"), args.out_dir, config)
            print(f"wrote {len(written)} study folders under {args.out_dir}")
    except ReleaseError as error:
        print(f"release error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
