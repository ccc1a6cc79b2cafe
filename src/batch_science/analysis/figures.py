"""Paper-style figures (log2 axes) from the output tables only."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from batch_science.analysis.fit import scaling_curve  # noqa: E402

OPTIMIZER_COLORS = {"sgd": "#1f77b4", "momentum": "#d62728", "nesterov": "#2ca02c"}
OPTIMIZER_LABELS = {"sgd": "SGD", "momentum": "Momentum", "nesterov": "Nesterov momentum"}
STATUS_STYLE = {
    "reached": dict(marker="o", label="goal reached"),
    "not_reached": dict(marker="x", color="0.55", label="goal not reached"),
    "infeasible": dict(marker="^", color="black", label="infeasible", facecolors="none"),
}


def save(figure, path: str | Path) -> None:
    """Write PNG and PDF side by side (path ends in .png)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150, bbox_inches="tight")
    figure.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(figure)


def _log2_axes(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.grid(True, which="major", alpha=0.3)


def _panels(n: int, width: float = 4.6, height: float = 3.8):
    columns = min(n, 3)
    rows = math.ceil(n / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return figure, list(axes.flat[:n])


def steps_to_result_figure(steps: pd.DataFrame, fits: pd.DataFrame, bootstrap: pd.DataFrame, path, confidence: float = 0.9):
    """Steps to result vs batch size per workload: measured, fitted S(B) with band, perfect scaling."""
    workloads = sorted(steps["workload"].unique())
    figure, axes = _panels(len(workloads))
    for ax, workload in zip(axes, workloads):
        for optimizer, rows in steps[steps["workload"] == workload].groupby("optimizer"):
            rows = rows.dropna(subset=["steps_to_result"]).sort_values("batch_size")
            if rows.empty:
                continue
            color = OPTIMIZER_COLORS.get(optimizer)
            b, s = rows["batch_size"].to_numpy(float), rows["steps_to_result"].to_numpy(float)
            ax.plot(b, s, "o", color=color, label=OPTIMIZER_LABELS.get(optimizer, optimizer))
            ax.plot(b, s[0] * b[0] / b, ":", color=color, alpha=0.6, lw=1)
            fit = fits[(fits["workload"] == workload) & (fits["optimizer"] == optimizer)]
            if len(fit) and np.isfinite(fit["s_min"].iloc[0]):
                grid = np.geomspace(b.min(), b.max(), 100)
                ax.plot(grid, scaling_curve(grid, fit["s_min"].iloc[0], fit["b_crit"].iloc[0]), "-", color=color, lw=1.5)
                samples = bootstrap[(bootstrap["workload"] == workload) & (bootstrap["optimizer"] == optimizer)].dropna()
                if len(samples) > 2:
                    curves = scaling_curve(grid[None, :], samples["s_min"].to_numpy()[:, None], samples["b_crit"].to_numpy()[:, None])
                    alpha = (1 - confidence) / 2
                    ax.fill_between(grid, np.quantile(curves, alpha, 0), np.quantile(curves, 1 - alpha, 0), color=color, alpha=0.15, lw=0)
                b_crit = fit["b_crit"].iloc[0]
                if b.min() <= b_crit <= b.max():
                    ax.axvline(b_crit, color=color, ls="--", lw=0.8, alpha=0.7)
        _log2_axes(ax)
        ax.set_title(workload)
        ax.set_xlabel("batch size")
        ax.set_ylabel("steps to result")
        ax.legend(fontsize=8, title="dotted: perfect scaling\nline: S_min(1+B_crit/B)\ndashed: B_crit", title_fontsize=7)
    save(figure, path)


def learning_rate_figure(steps: pd.DataFrame, path):
    """Best learning rate and effective learning rate lr/(1-momentum) vs batch size, with heuristics."""
    workloads = sorted(steps["workload"].unique())
    figure, axes = plt.subplots(2, len(workloads), figsize=(4.6 * len(workloads), 7.4), squeeze=False)
    for column, workload in enumerate(workloads):
        for row, quantity in enumerate(["learning_rate", "effective_learning_rate"]):
            ax = axes[row][column]
            for optimizer, rows in steps[steps["workload"] == workload].groupby("optimizer"):
                rows = rows.dropna(subset=[quantity]).sort_values("batch_size")
                if rows.empty:
                    continue
                color = OPTIMIZER_COLORS.get(optimizer)
                b, y = rows["batch_size"].to_numpy(float), rows[quantity].to_numpy(float)
                ax.plot(b, y, "o-", color=color, label=OPTIMIZER_LABELS.get(optimizer, optimizer))
                ax.plot(b, y[0] * b / b[0], "--", color=color, lw=0.8, alpha=0.6)
                ax.plot(b, y[0] * np.sqrt(b / b[0]), ":", color=color, lw=0.8, alpha=0.6)
            _log2_axes(ax)
            ax.set_title(workload)
            ax.set_xlabel("batch size")
            ax.set_ylabel("best " + quantity.replace("_", " "))
            ax.legend(fontsize=8, title="dashed: linear, dotted: square root", title_fontsize=7)
    save(figure, path)


def metaparameter_figure(trials: pd.DataFrame, steps: pd.DataFrame, workload: str, optimizer: str, path):
    """Per batch size, every trial in (learning rate, 1 - momentum) space, by outcome; best trial starred."""
    trials = trials[(trials["workload"] == workload) & (trials["optimizer"] == optimizer)]
    batch_sizes = sorted(trials["batch_size"].unique())
    figure, axes = _panels(len(batch_sizes), width=3.4, height=3.0)
    reached = trials[trials["status"] == "reached"]["steps_to_result"]
    norm = matplotlib.colors.LogNorm(vmin=max(reached.min(), 1), vmax=max(reached.max(), 2)) if len(reached) else None
    for ax, batch_size in zip(axes, batch_sizes):
        study = trials[trials["batch_size"] == batch_size]
        for status, style in STATUS_STYLE.items():
            points = study[study["status"] == status]
            if points.empty:
                continue
            kwargs = dict(style)
            if status == "reached":
                kwargs.update(c=points["steps_to_result"], cmap="viridis", norm=norm)
            ax.scatter(points["learning_rate"], 1 - points["momentum"], s=22, **kwargs)
        best = steps[(steps["workload"] == workload) & (steps["optimizer"] == optimizer) & (steps["batch_size"] == batch_size)]
        if len(best) and best["best_trial"].iloc[0] >= 0:
            ax.scatter(best["learning_rate"], 1 - best["momentum"], marker="*", s=180, color="gold", edgecolors="black", zorder=5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"batch size {batch_size}", fontsize=9)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("1 - momentum")
    axes[0].legend(fontsize=7, loc="lower left")
    figure.suptitle(f"{workload}, {OPTIMIZER_LABELS.get(optimizer, optimizer)}: trials by outcome (colour: steps to result)")
    save(figure, path)
