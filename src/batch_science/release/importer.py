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
import shutil
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
    name = dataset_dir.split("/")[-1]  # solution_quality/fashion_mnist -> fashion_mnist
    base = name.split("_")[0]  # mnist_subsets/mnist_13750 -> mnist, imagenet_half_images -> imagenet
    for key in ((dataset_dir, model), dataset_dir, (name, model), name, (base, model), base):
        if key in PAPER_TARGETS:
            return Target(*PAPER_TARGETS[key])
    return None


def _trial_dirs(study_dir: Path) -> list[Path]:
    dirs = [p for p in study_dir.iterdir() if p.is_dir()]
    bad = [p.name for p in dirs if not p.name.isdigit()]
    if bad:
        raise ReleaseError(f"{study_dir}: trial folder names must be integers, found {bad[:3]}")
    return sorted(dirs, key=lambda p: int(p.name))


def _read_measurements(path: Path, notes: list[str]) -> pd.DataFrame:
    """A trial's measurements with whole-number steps, identical repeated rows dropped (noted)."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ReleaseError(f"{path}: missing") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ReleaseError(f"{path}: not a readable CSV ({' '.join(str(error).split())[:120]})") from None
    if "step" not in frame.columns:
        raise ReleaseError(f"{path}: no 'step' column (columns: {', '.join(frame.columns)})")
    if frame.empty:  # a header-only file: read as numbers, not text
        frame = frame.astype(float)
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ReleaseError(f"{path}: non-numeric measurement column(s) {', '.join(bad)}")
    steps = frame["step"].to_numpy(float)
    # The paper's loader reads `step` as written; 1000.0 is step 1000, 1000.5 is no step.
    if not np.isfinite(steps).all() or (steps != np.round(steps)).any():
        raise ReleaseError(f"{path}: column 'step' must hold whole numbers")
    frame["step"] = steps.astype(np.int64)
    repeated = frame.duplicated()
    if repeated.any():
        notes.append(f"{path}: {int(repeated.sum())} repeated identical row(s) dropped")
        frame = frame[~repeated].reset_index(drop=True)
    if frame["step"].duplicated().any():
        conflicting = sorted(int(step) for step in frame["step"][frame["step"].duplicated()].unique())[:3]
        raise ReleaseError(f"{path}: repeated steps {conflicting} with different measurements")
    return frame


def _median_eval_interval(steps: np.ndarray) -> int:
    """Evaluations are not evenly spaced in the release: the median interval stands for eval_every."""
    gaps = np.diff(np.sort(steps))
    return int(np.median(gaps)) if len(gaps) else 0


class _TrialLeftOut(Exception):
    """A trial the paper's loader would not read either: the study goes on without it."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status


# Trial statuses of the release; the paper's loader skips any other.
RELEASE_STATUSES = ("COMPLETE", "INCOMPLETE", "INFEASIBLE")


def _parameter_column(name: str) -> str:
    """The trial column of a parameter the layout does not know: its own name, unless that is taken."""
    taken = {*TRIAL_COLUMNS, *RELEASE_COLUMNS}
    return f"parameter_{name}" if name in taken else name


def _trial_measurements(trial_dir: Path, status: str, notes: list[str]) -> pd.DataFrame | None:
    """A COMPLETE trial's measurements (required); an INFEASIBLE one's if it has any (None if not)."""
    path = trial_dir / "measurements.csv"
    if status == "COMPLETE":
        return _read_measurements(path, notes)
    if not path.exists():
        return None
    try:
        return _read_measurements(path, notes)
    except ReleaseError as error:
        notes.append(f"{error} (INFEASIBLE trial kept without its measurements)")
        return None


def _curve(measurements: pd.DataFrame | None, keys: tuple) -> pd.DataFrame:
    """Our curve rows of a trial: the study keys, step, our metric columns, then the release's own."""
    curve = (measurements if measurements is not None else pd.DataFrame({"step": []})).rename(
        columns=MEASUREMENT_COLUMNS
    )
    curve["step"] = curve["step"].astype(np.int64)
    for column in CURVE_METRICS:
        if column not in curve.columns:
            curve[column] = math.nan
    ours_columns = ["step", *CURVE_METRICS]
    curve = curve[[*ours_columns, *[c for c in curve.columns if c not in ours_columns]]]
    for key, value in reversed(list(zip(CURVE_KEYS, keys))):
        curve.insert(0, key, value)
    return curve


def read_trial(trial_dir: Path, study: dict, context: dict, notes: list[str]) -> tuple[dict, pd.DataFrame]:
    """(trial record, curve) of one trial folder; _TrialLeftOut for a trial the paper's loader skips,
    ReleaseError for one that makes the study unreadable."""
    meta_path = trial_dir / "metadata.json"
    meta = _read_json(meta_path)
    _require(meta, ["status"], meta_path)
    status = meta["status"]
    if status not in RELEASE_STATUSES:
        raise _TrialLeftOut(
            status, f"status '{status}' is not one of {', '.join(RELEASE_STATUSES)} (skipped, as the paper's loader)"
        )
    pruned = status == "INCOMPLETE" and meta.get("batch_science", {}).get("status") == PRUNED
    if status == "INCOMPLETE" and not pruned:  # ours, pruned (config prune), are kept as such
        raise _TrialLeftOut(status, "INCOMPLETE (ignored, as the paper's analysis does)")
    if status == "COMPLETE" or pruned:
        _require(meta, ["parameters", "trial_id"], meta_path)
    if str(meta.get("trial_id", trial_dir.name)) != trial_dir.name:
        raise ReleaseError(f"{meta_path}: trial_id {meta['trial_id']} does not match its folder '{trial_dir.name}'")
    parameters = meta.get("parameters", {})
    if not isinstance(parameters, dict) or not isinstance(parameters.get("learning_rate"), (int, float)):
        if status == "INFEASIBLE":
            raise _TrialLeftOut(
                status, "INFEASIBLE without a numeric learning_rate (no point to place in the metaparameter scatter)"
            )
        raise ReleaseError(f"{meta_path}: parameters must be an object with a numeric learning_rate")
    target = context["target"]
    measurements = _trial_measurements(trial_dir, "COMPLETE" if pruned else status, notes)
    metric_column = RELEASE_MEASUREMENTS[target.column]
    if (status == "COMPLETE" or pruned) and metric_column not in measurements.columns:
        raise ReleaseError(
            f"{trial_dir / 'measurements.csv'}: no '{metric_column}' column for target metric '{target.metric}'"
        )
    trial_id = int(trial_dir.name)
    curve = _curve(measurements, (context["workload"], context["optimizer"], context["batch_size"], trial_id))
    if target.column not in curve.columns:
        curve[target.column] = math.nan

    ours = meta.get("batch_science", {})
    values = {column: parameters.get(name, default) for name, (column, default) in PARAMETERS.items()}
    unknown = {name: value for name, value in parameters.items() if name not in PARAMETERS}
    metric = curve[target.column].to_numpy(float)
    best = target.best_index(metric)
    if "best_val_metric" in ours:
        best_metric, best_step = float(ours["best_val_metric"]), int(ours["best_step"])
    elif best is not None and status == "COMPLETE":
        best_metric, best_step = float(metric[best]), int(curve["step"].iloc[best])
    else:
        best_metric, best_step = math.nan, 0
    feasible = status == "COMPLETE"
    steps = trial_steps_to_result(curve, target.metric, target.value, target.direction) if feasible else math.nan
    final_step = int(meta.get("steps", curve["step"].max() if len(curve) else 0))
    extra_meta = {
        k: v for k, v in meta.items() if k not in ("parameters", "status", "steps", "trial_id", "batch_science")
    }
    release_metadata = {
        "extra": extra_meta,
        "parameters": sorted(parameters),
        # What metadata.json lacked, so that export writes it back as it was.
        **({"absent": sorted(k for k in ("parameters", "steps", "trial_id") if k not in meta)} if not feasible else {}),
        **({"unknown_parameters": unknown} if unknown else {}),
    }
    record = {
        "study": context["study_name"],
        "workload": ours.get("workload", context["workload"]),
        "dataset": study["dataset"],
        "model": study["model"],
        "optimizer": context["optimizer"],
        "batch_size": context["batch_size"],
        "trial_id": trial_id,
        "learning_rate": float(values["learning_rate"]),
        "momentum": float(values["momentum"]),
        "decay_steps": int(values["decay_steps"]),
        "end_factor": float(values["end_factor"]),
        "label_smoothing": float(values["label_smoothing"]),
        "seed": int(ours.get("seed", -1)),
        "step_budget": int(study.get("train_steps", final_step)),
        "eval_every": int(ours.get("eval_every", _median_eval_interval(curve["step"].to_numpy()))),
        "effective_learning_rate": effective_learning_rate(float(values["learning_rate"]), float(values["momentum"])),
        "status": PRUNED if pruned else (REACHED if math.isfinite(steps) else NOT_REACHED) if feasible else INFEASIBLE,
        "steps_to_result": steps,
        "best_val_metric": best_metric,
        "best_step": best_step,
        "final_step": final_step,
        "target_metric": target.metric,
        "target_value": float(target.value),
        "target_direction": target.direction,
        "config_hash": ours.get("config_hash"),  # None: read_release gives the import's own
        "release_path": "/".join(context["relative"]),
        "release_study": json.dumps(study, sort_keys=True),
        "release_metadata": json.dumps(release_metadata, sort_keys=True),
        "release_measurement_columns": json.dumps(None if measurements is None else list(measurements.columns)),
        **{_parameter_column(name): value for name, value in unknown.items()},
    }
    if ours.get("workload"):
        curve["workload"] = ours["workload"]
    return record, curve


def read_study(
    study_dir: Path, root: Path, study_name: str, target: Target | None, skipped: list[str], notes: list[str]
) -> tuple[list[dict], list[pd.DataFrame], int]:
    """(trial records, curve frames, INCOMPLETE trials left out) of one study folder; ReleaseError if
    malformed. Trials the paper's loader skips are listed in `skipped`, tolerated oddities in `notes`;
    both are only extended once the whole study could be read."""
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
    context = {
        "target": target,
        "study_name": study_name,
        "relative": relative,
        "optimizer": RELEASE_OPTIMIZERS[study["optimizer"]],
        "batch_size": int(study["batch_size"]),
        "workload": workload_name(relative[:-2]),
    }
    records, curves, incomplete, study_skipped, study_notes = [], [], 0, [], []
    for trial_dir in trial_dirs:
        try:
            record, curve = read_trial(trial_dir, study, context, study_notes)
        except _TrialLeftOut as reason:
            incomplete += reason.status == "INCOMPLETE"
            study_skipped.append(f"{trial_dir}: {reason}")
            continue
        records.append(record)
        curves.append(curve)
    if not records:
        raise ReleaseError(f"{study_dir}: no COMPLETE or INFEASIBLE trial ({len(study_skipped)} left out)")
    skipped += study_skipped
    notes += study_notes
    return records, curves, incomplete


def read_release(
    root: str | Path,
    study_name: str = "paper_release",
    targets: dict[str, Target] | None = None,
    strict: bool = False,
    first_complete: int | None = None,
    include: list[str] | None = None,
    allow_fewer: bool = False,
) -> ReleaseTables:
    """All study folders under `root` as trial and curve tables.

    `targets` maps a workload name (e.g. mnist_simple_cnn_base) or a release dataset folder
    (e.g. mnist, mnist_subsets/mnist_13750) to its goal; the paper's Figure 1 goals are used
    otherwise. A malformed or partial study is skipped and listed in `problems`, or with
    `strict` refused with ReleaseError. Trials the paper's loader skips (INCOMPLETE, unknown
    statuses) are listed in `skipped_trials`. `first_complete` keeps only the first N COMPLETE
    trials by trial id (and the INFEASIBLE ones among them), as the paper's plots did; a
    workload with a study of fewer than N COMPLETE trials is left out whole, as the paper's
    loader refuses it, unless `allow_fewer` (then noted). `include` keeps only study folders
    matching one of these shell patterns, relative to `root` (e.g. "mnist/simple_cnn_base/*/*"):
    the whole release holds 71 million measurements.
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
    read, skipped, notes, incomplete = {}, [], [], {}
    for study_dir in study_dirs:
        relative = study_dir.relative_to(root).parts
        dataset_dir, model = "/".join(relative[:-3]), relative[-3] if len(relative) >= 3 else ""
        target = (
            targets.get(workload_name(relative[:-2])) or targets.get(dataset_dir) or default_target(dataset_dir, model)
        )
        try:
            study_records, study_curves, n_incomplete = read_study(study_dir, root, study_name, target, skipped, notes)
        except ReleaseError as error:
            problems.append(str(error))
            continue
        read[study_dir] = (study_records, study_curves)
        if n_incomplete:
            incomplete["/".join(relative)] = n_incomplete
    if first_complete:
        read = _first_complete(read, first_complete, allow_fewer, problems, notes, skipped)
    if strict and problems:
        raise ReleaseError(f"{len(problems)} malformed or partial study folder(s), first: {problems[0]}")
    for problem in problems:
        log.warning("%s: study left out", problem)
    records = [record for study_records, _ in read.values() for record in study_records]
    curves = [curve for _, study_curves in read.values() for curve in study_curves]
    parameter_columns = sorted({key for record in records for key in record} - {*TRIAL_COLUMNS, *RELEASE_COLUMNS})
    trials = _typed_parameter_columns(
        pd.DataFrame(records, columns=TRIAL_COLUMNS + RELEASE_COLUMNS + parameter_columns), parameter_columns
    )
    # Trials of the paper's release share one config: the study folders read, their goals and the cut.
    studies = sorted(set(zip(trials["release_path"], trials["release_study"], trials["target_value"].astype(str))))
    import_hash = hashlib.sha256(json.dumps([studies, first_complete]).encode()).hexdigest()[:12]
    trials["config_hash"] = trials["config_hash"].fillna(import_hash)
    curves_table = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS)
    trials = trials.sort_values(CURVE_KEYS, ignore_index=True)
    curves_table = curves_table.sort_values([*CURVE_KEYS, "step"], ignore_index=True)
    return ReleaseTables(trials, curves_table, problems, incomplete, skipped, notes)


def _typed_parameter_columns(trials: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Parameters the layout does not know, as numbers where every trial has a number, else as JSON text."""
    for column in columns:
        values = trials[column].dropna()
        numeric = values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all()
        if numeric:
            trials[column] = trials[column].astype(float)
        else:
            trials[column] = trials[column].map(lambda v: v if v is None or v != v else json.dumps(v))
    return trials


def _first_complete(
    read: dict, n: int, allow_fewer: bool, problems: list[str], notes: list[str], skipped: list[str]
) -> dict:
    """Each study cut after its n-th COMPLETE trial (by trial id; the cut listed in `skipped`). A
    workload folder with a study of fewer than n is left out whole, as the paper's loader refuses
    it, or with `allow_fewer` kept and noted."""
    kept, short = {}, {}
    for study_dir, (records, curves) in read.items():
        cut, complete = 0, 0
        for record in records:
            if complete >= n:
                break
            cut += 1
            complete += record["status"] not in (INFEASIBLE, PRUNED)
        kept[study_dir] = (records[:cut], curves[:cut])
        if cut < len(records):
            ids = [record["trial_id"] for record in records[cut:]]
            skipped.append(
                f"{study_dir}: {len(ids)} trial(s) after the first {n} COMPLETE (trial ids {ids[0]}-{ids[-1]}) "
                "left out by --first-complete"
            )
        if complete < n:
            short[study_dir] = complete
    refused = set()
    for study_dir, complete in short.items():
        message = f"{study_dir}: only {complete} COMPLETE trial(s), --first-complete asks for {n}"
        if allow_fewer:
            notes.append(f"{message} (kept with fewer, as asked)")
            log.warning("%s; kept with fewer, as asked", message)
            continue
        problems.append(f"{message} (the paper's loader refuses its workload; --allow-fewer keeps it)")
        refused.add(study_dir.parent)
    for study_dir in kept:
        if study_dir.parent in refused and study_dir not in short:
            problems.append(f"{study_dir}: left out with its workload {study_dir.parent} (a study has too few trials)")
    return {d: tables for d, tables in kept.items() if d.parent not in refused}


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
        "stop_at_target": stopped_at_goal(trials),
        "search_spaces": spaces,
        "workloads": workloads,
    }


def stopped_at_goal(trials: pd.DataFrame) -> bool:
    """Whether imported trials stopped at the goal: a study marked `early_stopping` in its study.json
    with a trial whose last step is its steps to result, before its budget (what export writes)."""
    early = trials["release_study"].map(lambda text: bool(json.loads(text).get("early_stopping", False)))
    stopped = (trials["status"] == REACHED) & (trials["final_step"] == trials["steps_to_result"])
    return bool((early & stopped & (trials["final_step"] < trials["step_budget"])).any())


SAFE_STUDY_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def import_release(
    release_dir,
    study_name: str,
    results_dir="results",
    targets=None,
    strict=False,
    first_complete=None,
    include=None,
    allow_fewer=False,
    force=False,
) -> Path:
    """Import a release folder as results/<study>/: shard tables, aggregated tables, a config and
    import_summary.md (every study and trial left out, with its reason).

    Refuses an unsafe study name and an existing results/<study>/ (with `force`, a previous import
    is replaced; a study that was trained is never overwritten). Nothing is written until the
    whole import has been built next to it."""
    if not SAFE_STUDY_NAME.fullmatch(study_name) or study_name in (".", ".."):
        raise ReleaseError(f"--study '{study_name}': expected one folder name of letters, digits, '_', '-', '.'")
    out = Path(results_dir) / study_name
    if out.exists() and not (force and _is_import(out)):
        hint = "--force replaces a previous import" if _is_import(out) else "it is not an import; remove it by hand"
        raise ReleaseError(f"{out}: exists ({hint})")
    tables = read_release(release_dir, study_name, targets, strict, first_complete, include, allow_fewer)
    if tables.trials.empty:
        raise ReleaseError(f"{release_dir}: no study could be imported ({len(tables.problems)} left out)")
    building = out.with_name(f".{study_name}.importing")
    shutil.rmtree(building, ignore_errors=True)
    try:
        _write_import(tables, study_name, building, release_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)  # a failed import leaves nothing behind
        raise
    if out.exists():
        shutil.rmtree(out)
    building.rename(out)
    return out


def _write_import(tables: ReleaseTables, study_name: str, out: Path, release_dir) -> None:
    """Shard tables, aggregated tables, config.yaml and the import summary of an import, under `out`."""
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
    config["imported_from"] = meta["source"]
    with open(out / "config.yaml", "w") as f:
        f.write(f"# Imported from {meta['source']} by python -m batch_science.release; tune never runs on it.\n")
        yaml.safe_dump(config, f, sort_keys=False)
    (out / IMPORT_SUMMARY).write_text(f"# Import of {meta['source']}\n\n{tables.summary()}")


IMPORT_SUMMARY = "import_summary.md"


def _is_import(study_dir: Path) -> bool:
    """Whether a results/<study>/ folder was written by import_release (its config names its source)."""
    try:
        return "imported_from" in (yaml.safe_load((study_dir / "config.yaml").read_text()) or {})
    except (OSError, yaml.YAMLError):
        return False
