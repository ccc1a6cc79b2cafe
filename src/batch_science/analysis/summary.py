"""summary.md: the study's findings in a few sentences with numbers, from the output tables only."""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from batch_science.analysis.figures import optimizer_label
from batch_science.analysis.fit import MIN_BATCH_SIZES, NEEDS_COMPLETE_TRIALS
from batch_science.analysis.report import fit_for, interval, number, page
from batch_science.io import atomic_write

BOUND_WORDS = {
    "constrained": "",
    "lower bound only": " (only a lower bound: at or beyond the largest measured batch size)",
    "upper bound only": " (only an upper bound: at or below the smallest measured batch size)",
    "unconstrained": " (not constrained by the data)",
    NEEDS_COMPLETE_TRIALS: " (no interval: pruned trials stopped early, and the bootstrap needs complete trials)",
}


def log2_slope(batch_sizes, values) -> float:
    """Least-squares exponent p of values ~ B^p (1 = linear scaling, 0.5 = square root)."""
    b, y = np.asarray(batch_sizes, float), np.asarray(values, float)
    keep = np.isfinite(y) & (y > 0)
    if keep.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log2(b[keep]), np.log2(y[keep]), 1)[0])


def _range(values: pd.Series) -> str:
    low, high = number(values.min()), number(values.max())
    return low if low == high else f"{low}-{high}"


def boundary_value(fit: pd.Series, name: str) -> str:
    """A regime boundary in words: a number, or beyond / below the measured batch sizes."""
    value = fit[name]
    if value == math.inf:
        return f"beyond the measured batch sizes (> {number(fit['measured_b_max'])})"
    if value == 0:
        return f"below the measured batch sizes (< {number(fit['measured_b_min'])})"
    return number(value)


def _boundary_sentence(fit: pd.Series, name: str, what: str) -> str:
    if fit[name] in (0, math.inf):
        return f"{what}: {boundary_value(fit, name)}"
    return f"{what} ≈ {interval(fit, name)}{BOUND_WORDS.get(fit[name + '_constraint'], '')}"


def workload_paragraph(
    steps: pd.DataFrame, fits: pd.DataFrame, budget: pd.DataFrame, workload: str, optimizer: str, confidence: float
) -> str:
    rows = steps[(steps["workload"] == workload) & (steps["optimizer"] == optimizer)].sort_values("batch_size")
    reached = rows.dropna(subset=["steps_to_result"])
    direction = ">" if rows["target_direction"].iloc[0] == "maximize" else "<"
    goal = f"validation {rows['target_metric'].iloc[0]} {direction} {number(rows['target_value'].iloc[0])}"
    infeasible = f", {_range(rows['n_infeasible'])} infeasible" if rows["n_infeasible"].max() > 0 else ""
    lines = [
        f"**{workload}, {optimizer_label(optimizer)}** (goal: {goal}; {_range(rows['n_trials'])} feasible "
        f"trial{'s' if rows['n_trials'].max() != 1 else ''} per batch size{infeasible})."
    ]
    if reached.empty:
        return lines[0] + " No batch size reached the goal within its step budget."
    first, last = reached.iloc[0], reached.iloc[-1]
    missing = rows[rows["steps_to_result"].isna()]["batch_size"].tolist()
    lines.append(
        f"The goal was reached at {len(reached)} of {len(rows)} batch sizes"
        + (f" (not at {', '.join(map(str, missing))})" if missing else "")
        + "."
    )
    if len(reached) == 1:
        lines.append(
            f"It took {number(first['steps_to_result'])} steps at batch size {int(first['batch_size'])}; with one "
            "batch size reaching the goal, how steps to result scale with the batch size is not measured."
        )
    else:
        lines.append(
            f"Steps to result fell from {number(first['steps_to_result'])} at batch size {int(first['batch_size'])} "
            f"to {number(last['steps_to_result'])} at batch size {int(last['batch_size'])}: "
            f"a speed-up of {first['steps_to_result'] / last['steps_to_result']:.2f}x for "
            f"{number(last['batch_size'] / first['batch_size'])}x the batch size."
        )
    if "steps_interpolated" in reached and np.isfinite(reached["eval_interval"]).any():
        gap = (reached["steps_to_result"] - reached["steps_interpolated"]) / reached["steps_to_result"]
        lines.append(
            f"Interpolating between evaluations lowers steps to result by {number(100 * gap.median(), 2)}% (median "
            "over batch sizes; "
            f"the crossing lies at most one evaluation interval, {_range(reached['eval_interval'])} steps, before the "
            "first evaluation past the goal)."
        )
    fit = fit_for(fits, workload, optimizer)
    fitted = fit is not None and (np.isfinite(fit["piecewise_e_min"]) or np.isfinite(fit["s_min"]))
    if fitted and fit["n_batch_sizes"] < MIN_BATCH_SIZES:
        lines.append(
            f"With fewer than {MIN_BATCH_SIZES} batch sizes reaching the goal, the fits below are not constrained by "
            "the data."
        )
    if fit is not None and np.isfinite(fit["piecewise_e_min"]):
        lines.append(
            f"Piecewise log-log fit ({confidence:.0%} bootstrap intervals, tolerance {number(fit['tolerance'])}): "
            + _boundary_sentence(fit, "piecewise_b_perfect_end", "perfect scaling ends at batch size")
            + "; "
            + _boundary_sentence(fit, "piecewise_b_max_useful", "maximal useful batch size")
            + "."
        )
    if fit is not None and np.isfinite(fit["s_min"]):
        extrapolated = (
            " (extrapolated: the plateau lies beyond the measured batch sizes)"
            if fit["s_min_constraint"] == "extrapolated"
            else ""
        )
        lines.append(
            f"S(B) = S_min (1 + B_crit / B) fit: S_min ≈ {interval(fit, 's_min')}{extrapolated}, "
            f"B_crit ≈ {interval(fit, 'b_crit')}{BOUND_WORDS.get(fit['b_crit_constraint'], '')}."
        )
    lr_slope = log2_slope(reached["batch_size"], reached["learning_rate"])
    eff_slope = log2_slope(reached["batch_size"], reached["effective_learning_rate"])
    if np.isfinite(lr_slope):
        lines.append(
            f"The best learning rate grew as B^{number(lr_slope, 2)} and the best effective learning rate "
            "lr/(1-momentum) as "
            f"B^{number(eff_slope, 2)} (linear scaling: B^1, square-root scaling: B^0.5)."
        )
    small = budget[(budget["workload"] == workload) & (budget["optimizer"] == optimizer)]
    if len(small) and small["budget"].nunique() > 1:
        k_min, k_all = small["budget"].min(), small["budget"].max()
        both = (
            small[small["budget"].isin([k_min, k_all])]
            .pivot(index="batch_size", columns="budget", values="steps_median")
            .dropna()
        )
        if len(both):
            ratio = (both[k_min] / both[k_all]).median()
            lines.append(
                f"With random subsets of {k_min} of the {k_all} trials per batch size (infeasible ones included), "
                "the median steps to result was "
                f"{ratio:.2f}x the full-budget "
                "value (median over batch sizes), and the goal was reached in "
                f"{number(100 * small[small['budget'] == k_min]['fraction_reached'].mean(), 2)}% of subsets."
            )
    return " ".join(lines)


def optimizer_sentence(fits: pd.DataFrame, workload: str) -> str | None:
    """The end of perfect scaling of every optimizer of a workload, latest first."""
    rows = fits[(fits["workload"] == workload) & fits["piecewise_b_perfect_end"].notna()]
    if len(rows) < 2:
        return None
    parts = []
    for _, fit in rows.sort_values("piecewise_b_perfect_end", ascending=False).iterrows():
        value = boundary_value(fit, "piecewise_b_perfect_end")
        if fit["piecewise_b_perfect_end"] not in (0, math.inf):
            value = interval(fit, "piecewise_b_perfect_end")
        parts.append(f"{optimizer_label(fit['optimizer'])} {value}")
    return f"Optimizers on {workload}: perfect scaling (piecewise fit) ended at batch size " + "; ".join(parts) + "."


def study_summary(
    steps: pd.DataFrame,
    fits: pd.DataFrame,
    budget: pd.DataFrame,
    study: str,
    confidence: float,
    stopped_at_target: bool,
) -> str:
    paragraphs = [f"# Study {study}: summary", ""]
    for workload, optimizer in sorted(
        steps[["workload", "optimizer"]].drop_duplicates().itertuples(index=False, name=None)
    ):
        paragraphs += [workload_paragraph(steps, fits, budget, workload, optimizer, confidence), ""]
    for workload in sorted(steps["workload"].unique()):
        sentence = optimizer_sentence(fits, workload)
        if sentence:
            paragraphs += [sentence, ""]
    quality = steps.dropna(subset=["best_val_metric"])
    if len(quality):
        note = (
            " Trials stopped once they met the goal, so these values only show that the goal was met, not the best "
            "reachable."
            if stopped_at_target
            else ""
        )
        # One range per metric: an error and a cross-entropy are not on one scale.
        ranges = [
            f"validation {metric} {_range(rows['best_val_metric'])}"
            for metric, rows in quality.groupby("target_metric", sort=True)
        ]
        paragraphs += [
            f"Solution quality: the best value within the step budget across studies was {'; '.join(ranges)}.{note}",
            "",
        ]
    return "\n".join(paragraphs)


def summary_html(text: str) -> str:
    """The summary's Markdown (headings, paragraphs, bold) as an HTML page for the report."""
    blocks = []
    for block in text.split("\n\n"):
        block = html.escape(block.strip())
        if not block:
            continue
        block = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", block)
        blocks.append(f"<h2>{block[2:]}</h2>" if block.startswith("# ") else f"<p>{block}</p>")
    return page("Summary", "\n".join(blocks))


def write_summary(
    steps: pd.DataFrame,
    fits: pd.DataFrame,
    budget: pd.DataFrame,
    markdown_path,
    html_path,
    study: str,
    confidence: float,
    stopped_at_target: bool,
) -> None:
    text = study_summary(steps, fits, budget, study, confidence, stopped_at_target)
    atomic_write(markdown_path, lambda tmp: Path(tmp).write_text(text))
    atomic_write(html_path, lambda tmp: Path(tmp).write_text(summary_html(text)))
