"""The output contract: the tables a study writes, their key columns, where they live, their provenance.

Every stage meets the others only through these tables (tidy, one row per trial or per
evaluation), so their keys and paths are defined here once: the rules (rules/*.smk), the tune
job, the aggregation, the importer of the paper's release and the benchmark all use them.
Path functions take wildcard patterns by default ("{workload}", ...), so one function gives a
rule its output pattern and a caller the path of one study.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from batch_science.config import Study, config_hash
from batch_science.trials import OWN_METAPARAMETER_KEYS

STUDY_KEYS = ["workload", "optimizer", "batch_size"]
CURVE_KEYS = [*STUDY_KEYS, "trial_id"]  # the keys of a trial, and of its rows in a curve table
CURVE_METRICS = ["train_cross_entropy", "val_cross_entropy", "val_error"]  # what every evaluation records
CURVE_COLUMNS = [*CURVE_KEYS, "step", *CURVE_METRICS]
# A trial table's columns (trials.parquet; tune adds where and how it trained).
TRIAL_COLUMNS = [
    "study", "workload", "dataset", "model", "optimizer", "batch_size", "trial_id", "learning_rate", "momentum",
    "decay_steps", "end_factor", "label_smoothing", "seed", "step_budget", "eval_every", "effective_learning_rate",
    "status", "steps_to_result", "best_val_metric", "best_step", "final_step", "target_metric", "target_value",
    "target_direction", "config_hash",
]  # fmt: skip
# steps_to_result.csv: one row per study, its best trial (analysis/steps.py best_trials; beta1,
# beta2 and epsilon are Adam's, empty for the other optimizers); the aggregation adds
# steps_interpolated and eval_interval.
STEPS_TO_RESULT_COLUMNS = [
    *STUDY_KEYS, "steps_to_result", "best_trial", "learning_rate", "momentum", "effective_learning_rate",
    "decay_steps", "end_factor", "label_smoothing", *OWN_METAPARAMETER_KEYS, "n_trials", "n_infeasible", "n_reached",
    "n_pruned", "best_val_metric", "step_budget", "target_metric", "target_value", "target_direction",
]  # fmt: skip
TABLE_KINDS = ("trials", "curves")
STUDY_PATTERN = Study("{workload}", "{optimizer}", "{batch_size}")

PACKAGES = ("batch-science", "tensorflow", "tensorflow-datasets", "numpy", "scipy", "pandas", "snakemake", "mnist1d")


def results_dir(study_name: str) -> str:
    """Where a study's outputs live: results/<study>/."""
    return f"results/{study_name}"


def study_tables(results: str) -> dict[str, str]:
    """A study's aggregated tables (rule aggregate's outputs): trials, curves and steps to result."""
    return {"trials": f"{results}/trials.parquet", "curves": f"{results}/curves.parquet",
            "steps": f"{results}/steps_to_result.csv"}  # fmt: skip


def shard_table(results: str, kind: str, study: Study = STUDY_PATTERN, shard="{shard}") -> str:
    """One tune job's trial or curve table (kind: trials or curves)."""
    if kind not in TABLE_KINDS:
        raise ValueError(f"table kind '{kind}': expected one of {', '.join(TABLE_KINDS)}")
    return f"{results}/{kind}/{study.path}/shard{shard}.parquet"


def partial_dir(results: str, study: Study = STUDY_PATTERN) -> str:
    """Where a study's tune jobs keep each finished trial and the checkpoints of trials in flight."""
    return f"{results}/partial/{study.path}"


def partial_trial(partial_folder: str | Path, trial_id: int) -> Path:
    """A finished trial's curve (with its record in the metadata), written as soon as it finishes."""
    return Path(partial_folder) / f"trial_{trial_id:05d}.parquet"


def trial_checkpoint(partial_folder: str | Path, trial_id: int) -> Path:
    """The folder of a trial's mid-trial checkpoints (training/checkpoint.py)."""
    return Path(partial_folder) / f"trial_{trial_id:05d}.checkpoint"


def best_step_file(partial_folder: str | Path, shard: int) -> Path:
    """A tune job's fewest steps to result of its study so far, read by the study's other jobs (config prune)."""
    return Path(partial_folder) / f"best_step_shard{shard}.json"


def tune_log(study_name: str, study: Study = STUDY_PATTERN, shard="{shard}") -> str:
    return f"logs/tune/{study_name}/{study.path}/shard{shard}.log"


def tune_benchmark(study_name: str, study: Study = STUDY_PATTERN, shard="{shard}") -> str:
    """Snakemake's benchmark file of a tune job (run time and memory, read by the provenance page)."""
    return f"benchmarks/tune/{study_name}/{study.path}/shard{shard}.tsv"


def package_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def provenance(config: dict) -> dict[str, str]:
    """What every result table carries in its parquet metadata: config, its hash, seed, versions."""
    return {
        "config_hash": config_hash(config),
        "seed": str(config["seed"]),
        "precision": config["precision"],
        "package_versions": json.dumps(package_versions(), sort_keys=True),
        "config": json.dumps(config, sort_keys=True),
    }
