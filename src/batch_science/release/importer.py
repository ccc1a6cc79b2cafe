"""Read the paper's data release (layout.py) into this project's trial and curve tables.

Steps to result are computed by `analysis.steps.trial_steps_to_result`, as for our own trials. A
study folder that is malformed or partial is reported by path and skipped whole (or, with
`strict=True`, refused), never mixed in part. Everything a table cannot hold in its own columns
travels in `release_*` columns (trials) or under the measurement's own column name (curves), so
export and import round-trip losslessly for COMPLETE and INFEASIBLE trials. INCOMPLETE trials
are left out, as the paper's analysis ignores them; how many is reported per study.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from batch_science.analysis.aggregate import aggregate_study
from batch_science.analysis.steps import trial_steps_to_result
from batch_science.config import Study
from batch_science.io import write_parquet
from batch_science.release.layout import (
    MEASUREMENT_COLUMNS,
    PAPER_TARGETS,
    PARAMETERS,
    RELEASE_COLUMNS,
    RELEASE_MEASUREMENTS,
    RELEASE_OPTIMIZERS,
    ReleaseError,
    ReleaseTables,
    parameter_configs_to_search_space,
    release_model_spec,
)
from batch_science.tables import (
    CURVE_COLUMNS,
    CURVE_KEYS,
    CURVE_METRICS,
    STUDY_KEYS,
    TABLE_KINDS,
    TRIAL_COLUMNS,
    shard_table,
)
from batch_science.trials import (
    INFEASIBLE,
    MOMENTUM_OPTIMIZERS,
    NOT_REACHED,
    PRUNED,
    REACHED,
    Target,
    effective_learning_rate,
)

log = logging.getLogger(__name__)


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


def workload_name(parts: tuple[str, ...]) -> str:
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


def _median_eval_interval(steps: np.ndarray) -> int:
    """Evaluations are not evenly spaced in the release: the median interval stands for eval_every."""
    gaps = np.diff(np.sort(steps))
    return int(np.median(gaps)) if len(gaps) else 0


def read_study(
    study_dir: Path, root: Path, study_name: str, target: Target | None
) -> tuple[list[dict], list[pd.DataFrame], int]:
    """(trial records, curve frames, INCOMPLETE trials left out) of one study folder; ReleaseError if malformed."""
    relative = study_dir.relative_to(root).parts
    if len(relative) < 4:
        raise ReleaseError(f"{study_dir}: expected <dataset>/<model>/<optimizer>/<batch_size>/study.json below {root}")
    study_path = study_dir / "study.json"
    study = _read_json(study_path)
    _require(study, ["batch_size", "dataset", "model", "optimizer"], study_path)
    if RELEASE_OPTIMIZERS.get(study["optimizer"]) is None:
        raise ReleaseError(
            f"{study_path}: unknown optimizer '{study['optimizer']}' (known: {', '.join(RELEASE_OPTIMIZERS)})"
        )
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
    metric_column = RELEASE_MEASUREMENTS[target.column]
    optimizer = RELEASE_OPTIMIZERS[study["optimizer"]]
    batch_size = int(study["batch_size"])
    workload = workload_name(relative[:-2])
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
        pruned = meta["status"] == "INCOMPLETE" and meta.get("batch_science", {}).get("status") == PRUNED
        if meta["status"] == "INCOMPLETE" and not pruned:  # ours, pruned (config prune), are kept as such
            incomplete += 1
            continue
        parameters = meta["parameters"]
        if not isinstance(parameters, dict) or "learning_rate" not in parameters:
            raise ReleaseError(f"{meta_path}: parameters must be an object with a learning_rate")
        unknown = sorted(set(parameters) - set(PARAMETERS))
        if unknown:
            raise ReleaseError(
                f"{meta_path}: unknown parameter(s) {', '.join(unknown)} (known: {', '.join(PARAMETERS)})"
            )
        measurements = _read_measurements(trial_dir / "measurements.csv")
        if metric_column not in measurements.columns:
            raise ReleaseError(
                f"{trial_dir / 'measurements.csv'}: no '{metric_column}' column for target metric '{target.metric}'"
            )

        curve = measurements.rename(columns=MEASUREMENT_COLUMNS)
        for column in CURVE_METRICS:
            if column not in curve.columns:
                curve[column] = math.nan
        ours_columns = ["step", *CURVE_METRICS]
        curve = curve[[*ours_columns, *[c for c in curve.columns if c not in ours_columns]]]
        trial_id = int(meta["trial_id"])
        for key, value in reversed(list(zip(CURVE_KEYS, (workload, optimizer, batch_size, trial_id)))):
            curve.insert(0, key, value)

        ours = meta.get("batch_science", {})
        values = {column: parameters.get(name, default) for name, (column, default) in PARAMETERS.items()}
        metric = curve[target.column].to_numpy(float)
        best = target.best_index(metric)
        if "best_val_metric" in ours:
            best_metric, best_step = float(ours["best_val_metric"]), int(ours["best_step"])
        elif best is not None:
            best_metric, best_step = float(metric[best]), int(curve["step"].iloc[best])
        else:
            best_metric, best_step = math.nan, 0
        feasible = meta["status"] == "COMPLETE"
        steps = trial_steps_to_result(curve, target.metric, target.value, target.direction) if feasible else math.nan
        extra_meta = {
            k: v for k, v in meta.items() if k not in ("parameters", "status", "steps", "trial_id", "batch_science")
        }
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
                "eval_every": int(ours.get("eval_every", _median_eval_interval(curve["step"].to_numpy()))),
                "effective_learning_rate": effective_learning_rate(
                    float(values["learning_rate"]), float(values["momentum"])
                ),
                "status": PRUNED
                if pruned
                else (REACHED if math.isfinite(steps) else NOT_REACHED)
                if feasible
                else INFEASIBLE,
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
        study_dirs = [
            d
            for d in study_dirs
            if any(fnmatch.fnmatchcase("/".join(d.relative_to(root).parts), pattern) for pattern in include)
        ]
        if not study_dirs:
            raise ReleaseError(f"{root}: no study folder matches {', '.join(include)}")
    # A study folder whose study.json is missing is partial: it has trial folders with metadata.json.
    orphans = sorted({p.parent.parent for p in root.rglob("metadata.json")} - set(study_dirs))
    if not study_dirs and not orphans:
        raise ReleaseError(
            f"{root}: no study.json below this folder (expected <dataset>/<model>/<optimizer>/<batch_size>/study.json)"
        )
    problems = [f"{d / 'study.json'}: missing (study folder has trial folders)" for d in orphans]
    records, curves, incomplete = [], [], {}
    for study_dir in study_dirs:
        relative = study_dir.relative_to(root).parts
        dataset_dir, model = "/".join(relative[:-3]), relative[-3] if len(relative) >= 3 else ""
        target = (
            targets.get(workload_name(relative[:-2])) or targets.get(dataset_dir) or default_target(dataset_dir, model)
        )
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
    curves_table = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS)
    trials = trials.sort_values(CURVE_KEYS, ignore_index=True)
    curves_table = curves_table.sort_values([*CURVE_KEYS, "step"], ignore_index=True)
    return ReleaseTables(trials, curves_table, problems, incomplete)


def _first_complete(records, curves, n):
    kept, complete = [], 0
    for record, curve in zip(records, curves):
        if complete >= n:
            break
        kept.append((record, curve))
        complete += record["status"] != INFEASIBLE
    return [r for r, _ in kept], [c for _, c in kept]


def imported_study_config(tables: ReleaseTables, study_name: str) -> dict:
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
            "target": {
                "metric": first["target_metric"],
                "value": float(first["target_value"]),
                "direction": first["target_direction"],
            },
            "step_budget": {
                str(b): max(1, int(s) if s > 0 else int(rows[rows["batch_size"] == b]["final_step"].max()))
                for b, s in budgets.items()
            },
            "eval_every": {str(b): max(1, int(e)) for b, e in evals.items()},
            "batch_sizes": sorted(int(b) for b in rows["batch_size"].unique()),
            "optimizers": sorted(rows["optimizer"].unique()),
        }
        for optimizer, study in rows.groupby("optimizer"):
            if optimizer in spaces:
                continue
            record = (
                json.loads(study.iloc[0]["release_study"])
                if isinstance(study.iloc[0].get("release_study"), str)
                else {}
            )
            space = parameter_configs_to_search_space(
                record.get("parameter_configs", {}), int(study.iloc[0]["step_budget"])
            )
            space.setdefault(
                "learning_rate",
                {"min": float(rows["learning_rate"].min()), "max": float(rows["learning_rate"].max()), "scale": "log"},
            )
            if optimizer in MOMENTUM_OPTIMIZERS:
                space.setdefault("momentum", {"min": 0.0, "max": 0.999, "scale": "reverse_log"})
            else:
                space.pop("momentum", None)
            spaces[optimizer] = space
    trials_per_study = int(trials.groupby(STUDY_KEYS).size().max())
    return {
        "study": study_name,
        "trials": trials_per_study,
        "trials_per_job": trials_per_study,
        "search_spaces": spaces,
        "workloads": workloads,
    }


def import_release(
    release_dir, study_name: str, results_dir="results", targets=None, strict=False, first_complete=None, include=None
) -> Path:
    """Import a release folder as results/<study>/: shard tables, aggregated tables and a config."""
    tables = read_release(release_dir, study_name, targets, strict, first_complete, include)
    if tables.trials.empty:
        raise ReleaseError(f"{release_dir}: no study could be imported ({len(tables.problems)} left out)")
    out = Path(results_dir) / study_name
    config = imported_study_config(tables, study_name)
    meta = {"source": str(Path(release_dir).resolve()), "imported_by": "batch_science.release"}
    trial_files, curve_files = [], []
    empty_trials, empty_curves = tables.trials.iloc[0:0], tables.curves.iloc[0:0]
    for workload, spec in config["workloads"].items():
        for optimizer in spec["optimizers"]:
            for batch_size in spec["batch_sizes"]:
                study = Study(workload, optimizer, int(batch_size))
                pick = (
                    (tables.trials["workload"] == workload)
                    & (tables.trials["optimizer"] == optimizer)
                    & (tables.trials["batch_size"] == batch_size)
                )
                pick_curves = (
                    (tables.curves["workload"] == workload)
                    & (tables.curves["optimizer"] == optimizer)
                    & (tables.curves["batch_size"] == batch_size)
                )
                # The config grid is workload x optimizers x batch sizes; a study the release lacks is an empty table.
                trial_file, curve_file = (shard_table(str(out), kind, study, 0) for kind in TABLE_KINDS)
                write_parquet(tables.trials[pick] if pick.any() else empty_trials, trial_file, meta)
                write_parquet(tables.curves[pick_curves] if pick_curves.any() else empty_curves, curve_file, meta)
                trial_files.append(trial_file)
                curve_files.append(curve_file)
    aggregate_study(
        trial_files, curve_files, out / "trials.parquet", out / "curves.parquet", out / "steps_to_result.csv"
    )
    config["noise_scale"] = {"enabled": False}  # no data to train on
    with open(out / "config.yaml", "w") as f:
        f.write(f"# Imported from {meta['source']} by python -m batch_science.release; tune never runs on it.\n")
        yaml.safe_dump(config, f, sort_keys=False)
    return out
