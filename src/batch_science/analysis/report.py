"""Readable tables and the provenance page of the study report, from the output tables only.

Snakemake's report shows HTML inline (CSV only as a download), so every table is written as a
small HTML page; the CSV files in results/<study>/ stay the machine-readable versions.
"""

from __future__ import annotations

import html
import json
import math
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from batch_science.analysis.fit import FIT_KEYS
from batch_science.io import atomic_write, read_parquet_metadata

STYLE = """<style>
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; }
</style>"""

STEPS_COLUMNS = {
    "workload": "workload",
    "optimizer": "optimizer",
    "batch_size": "batch size",
    "steps_to_result": "steps to result (first evaluation past goal)",
    "steps_interpolated": "steps interpolated between evaluations",
    "eval_interval": "evaluation interval (error bound)",
    "n_trials": "feasible trials",
    "n_reached": "reached",
    "n_infeasible": "infeasible",
    "best_val_metric": "best validation metric",
    "step_budget": "step budget",
}
METAPARAMETER_COLUMNS = {
    "workload": "workload",
    "optimizer": "optimizer",
    "batch_size": "batch size",
    "best_trial": "best trial",
    "learning_rate": "learning rate",
    "momentum": "momentum",
    "effective_learning_rate": "lr / (1 - momentum)",
    "decay_steps": "decay steps",
    "end_factor": "end factor",
    "label_smoothing": "label smoothing",
}
# (fits.csv column, readable name); each has _lo/_hi columns, boundaries also a _constraint column.
FIT_QUANTITIES = [
    ("s_min", "S_min of S_min (1 + B_crit / B)"),
    ("b_crit", "B_crit of S_min (1 + B_crit / B)"),
    ("b_perfect_end", "end of perfect scaling, S(B) fit"),
    ("b_max_useful", "maximal useful batch size, S(B) fit"),
    ("piecewise_s_plateau", "plateau steps, piecewise fit"),
    ("piecewise_b_perfect_end", "end of perfect scaling, piecewise fit"),
    ("piecewise_b_max_useful", "maximal useful batch size, piecewise fit"),
]


def number(value, digits: int = 3) -> str:
    """A number for people: 3 significant digits, integers as integers, inf and NaN in words."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == int(value) and abs(value) < 1e7:
        return str(int(value))
    if 10**digits <= abs(value) < 1e7:
        return f"{float(f'{value:.{digits}g}'):.0f}"
    return f"{value:.{digits}g}"


def interval(fit: pd.Series, name: str) -> str:
    return f"{number(fit[name])} [{number(fit[name + '_lo'])}, {number(fit[name + '_hi'])}]"


def fits_long(fits: pd.DataFrame) -> pd.DataFrame:
    """One row per fitted quantity: value, interval and what the data constrain."""
    rows = []
    for _, fit in fits.iterrows():
        for name, label in FIT_QUANTITIES:
            rows.append(
                {
                    "workload": fit["workload"],
                    "optimizer": fit["optimizer"],
                    "quantity": label,
                    "value": number(fit[name]),
                    "interval": f"[{number(fit[name + '_lo'])}, {number(fit[name + '_hi'])}]",
                    "the data give": fit.get(name + "_constraint", ""),
                }
            )
    return pd.DataFrame(rows)


def page(title: str, body: str) -> str:
    head = f"<head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}</head>"
    return f"<!DOCTYPE html><html>{head}<body>{body}</body></html>"


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, na_rep="n/a", float_format=number, border=0, escape=True)


def write_html_table(frame: pd.DataFrame, path, title: str, note: str = "") -> None:
    body = f"<h2>{html.escape(title)}</h2>" + (f"<p>{html.escape(note)}</p>" if note else "") + _table_html(frame)
    atomic_write(path, lambda tmp: Path(tmp).write_text(page(title, body)))


def write_report_tables(
    steps: pd.DataFrame, fits: pd.DataFrame, tuning_budget: pd.DataFrame, output: dict, confidence: float
) -> None:
    """The report's tables: steps to result, best metaparameters, fits, tuning-budget robustness."""
    write_html_table(
        steps.reindex(columns=list(STEPS_COLUMNS)).rename(columns=STEPS_COLUMNS),
        output["steps"],
        "Steps to result per study",
        "The first evaluation past the goal overestimates the crossing by less than one evaluation interval; "
        "the interpolated value estimates it inside that interval.",
    )
    write_html_table(
        steps.reindex(columns=list(METAPARAMETER_COLUMNS)).rename(columns=METAPARAMETER_COLUMNS),
        output["metaparameters"],
        "Best metaparameters per study (the trial that reached the goal first)",
    )
    write_html_table(
        fits_long(fits),
        output["fits"],
        "Fits per workload and optimizer",
        f"Intervals: {confidence:.0%} bootstrap over trials. 'lower bound only': the boundary lies at or beyond the "
        "largest "
        "measured batch size; 'upper bound only': at or below the smallest; 'extrapolated': the plateau was not "
        "reached.",
    )
    budget = tuning_budget.rename(
        columns={
            "budget": "trials per study (k)",
            "steps_median": "median steps to result",
            "steps_lo": "low",
            "steps_hi": "high",
            "fraction_reached": "fraction of subsets reaching the goal",
        }
    )
    write_html_table(
        budget.drop(columns=["confidence"]), output["tuning_budget"], "Steps to result from random subsets of k trials"
    )


def study_metadata(trials_path) -> dict:
    """Provenance carried in the schema metadata of trials.parquet (config, its hash, package versions)."""
    meta = read_parquet_metadata(trials_path)
    return {
        "config": json.loads(meta["config"]) if "config" in meta else None,
        "config_hash": meta.get("config_hash", "not recorded"),
        "package_versions": json.loads(meta["package_versions"]) if "package_versions" in meta else {},
        "seed": meta.get("seed", "not recorded"),
        "precision": meta.get("precision", "not recorded"),
    }


def git_revision(directory: str = ".") -> str:
    """The analysis code's revision, with '-dirty' when it has uncommitted changes; 'unknown' outside git."""
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return revision + ("-dirty" if dirty else "")


def machine() -> dict[str, str]:
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
    }


def run_times(benchmark_files) -> pd.DataFrame:
    """Snakemake's benchmark of every tune job that has one (wall and CPU seconds, peak memory)."""
    rows = []
    for path in benchmark_files:
        if Path(path).exists():
            record = pd.read_csv(path, sep="\t").iloc[-1]
            rows.append(
                {
                    "job": str(Path(path).with_suffix("")).split("tune/", 1)[-1],
                    "wall s": float(record["s"]),
                    "cpu s": float(record["cpu_time"]),
                    "max RSS MB": float(record["max_rss"]),
                }
            )
    return pd.DataFrame(rows, columns=["job", "wall s", "cpu s", "max RSS MB"])


def training_places(trials_path) -> list[tuple[str, str]]:
    """Hosts, devices and graph sizes the trials trained on, with trial counts (not recorded by older results)."""
    trials = pd.read_parquet(trials_path)
    facts = []
    for column, name in (
        ("training_host", "training hosts"),
        ("training_device", "training devices"),
        ("trials_per_graph", "trials per graph (at a job's start)"),
    ):
        counts = (
            trials[column].fillna("not recorded").value_counts()
            if column in trials
            else pd.Series({"not recorded": len(trials)})
        )
        facts.append((name, "; ".join(f"{place} ({count} trials)" for place, count in counts.items())))
    return facts


def write_provenance(trials_path, benchmark_files, path, repository: str) -> None:
    """The provenance page; `repository` is the workflow's folder, whose git revision is the analysis code's."""
    meta = study_metadata(trials_path)
    times = run_times(benchmark_files)
    facts = pd.DataFrame(
        [
            ("config hash", meta["config_hash"]),
            ("seed", meta["seed"]),
            ("precision", meta["precision"]),
            ("git revision (analysis)", git_revision(repository)),
            *training_places(trials_path),
            *((f"machine (analysis): {k}", v) for k, v in machine().items()),
            ("tune jobs benchmarked", f"{len(times)} of {len(list(benchmark_files))}"),
            ("training wall time, all jobs", f"{times['wall s'].sum():.0f} s"),
            ("training CPU time, all jobs", f"{times['cpu s'].sum():.0f} s"),
        ],
        columns=["item", "value"],
    )
    versions = pd.DataFrame(sorted(meta["package_versions"].items()), columns=["package", "version (training)"])
    config = json.dumps(meta["config"], indent=2, sort_keys=True) if meta["config"] is not None else "not recorded"
    body = (
        "<h2>Provenance</h2>"
        + _table_html(facts)
        + "<h3>Package versions</h3>"
        + _table_html(versions)
        + "<h3>Run times of the tune jobs (Snakemake benchmarks)</h3>"
        + _table_html(times)
        + "<h3>Study config (validated, as recorded in trials.parquet)</h3><pre>"
        + html.escape(config)
        + "</pre>"
    )
    atomic_write(path, lambda tmp: Path(tmp).write_text(page("Provenance", body)))


def fit_for(fits: pd.DataFrame, workload: str, optimizer: str) -> pd.Series | None:
    rows = fits[(fits[FIT_KEYS[0]] == workload) & (fits[FIT_KEYS[1]] == optimizer)]
    return rows.iloc[0] if len(rows) else None
