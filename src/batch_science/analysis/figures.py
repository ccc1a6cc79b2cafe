"""Paper-style figures (log2 axes) from the output tables only.

Colours are fixed per optimizer (OPTIMIZER_COLORS) and per workload (workload_colors, by the
sorted list of the study's workloads), so the same line looks the same in every figure.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from batch_science.analysis.fit import FIT_KEYS, piecewise_curve, scaling_curve  # noqa: E402
from batch_science.trials import INFEASIBLE, NOT_REACHED, REACHED  # noqa: E402

# How each optimizer of trials.OPTIMIZERS is drawn: (label, colour, marker).
OPTIMIZER_STYLE = {
    "sgd": ("SGD", "#1f77b4", "o"),
    "momentum": ("Momentum", "#d62728", "s"),
    "nesterov": ("Nesterov momentum", "#2ca02c", "^"),
}
OPTIMIZER_LABELS = {name: label for name, (label, _, _) in OPTIMIZER_STYLE.items()}
OPTIMIZER_COLORS = {name: color for name, (_, color, _) in OPTIMIZER_STYLE.items()}
OPTIMIZER_MARKERS = {name: marker for name, (_, _, marker) in OPTIMIZER_STYLE.items()}
# The paper's headline curves use Nesterov momentum; a workload without it shows its first optimizer.
REFERENCE_OPTIMIZERS = ("nesterov", "momentum", "sgd")
STATUS_STYLE = {
    REACHED: dict(marker="o", label="goal reached"),
    NOT_REACHED: dict(marker="x", color="0.55", label="goal not reached"),
    INFEASIBLE: dict(marker="^", color="black", label="infeasible", facecolors="none"),
}


def save(figure, path: str | Path) -> None:
    """Write PNG and PDF side by side (path ends in .png)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150, bbox_inches="tight")
    # Fonts embedded as TrueType (Type 42), not matplotlib's default Type 3, which journals reject.
    with matplotlib.rc_context({"pdf.fonttype": 42}):
        figure.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(figure)


def workload_colors(workloads) -> dict[str, str]:
    palette = plt.get_cmap("tab10").colors
    return {w: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, w in enumerate(sorted(set(workloads)))}


def optimizer_label(optimizer: str) -> str:
    return OPTIMIZER_LABELS.get(optimizer, optimizer)


def reference_optimizer(optimizers) -> str:
    optimizers = list(optimizers)
    return next((o for o in REFERENCE_OPTIMIZERS if o in optimizers), sorted(optimizers)[0])


def _log2_axes(ax, y: bool = True) -> None:
    ax.set_xscale("log", base=2)
    if y:
        ax.set_yscale("log", base=2)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_xlabel("batch size")


def _panels(n: int, width: float = 4.6, height: float = 3.8, columns: int = 3):
    n = max(n, 1)
    columns = min(n, columns)
    rows = math.ceil(n / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(width * columns, height * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return figure, list(axes.flat[:n])


def _empty(path, message: str) -> None:
    """A figure that says why it has nothing to show (Snakemake still needs the file)."""
    figure, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    save(figure, path)


def _study_rows(steps: pd.DataFrame, workload: str, optimizer: str, column: str = "steps_to_result") -> pd.DataFrame:
    rows = steps[(steps["workload"] == workload) & (steps["optimizer"] == optimizer)]
    return rows.dropna(subset=[column]).sort_values("batch_size")


def _fit_row(fits: pd.DataFrame, workload: str, optimizer: str):
    rows = fits[(fits["workload"] == workload) & (fits["optimizer"] == optimizer)]
    return rows.iloc[0] if len(rows) else None


def _band(ax, grid, curves: np.ndarray, confidence: float, color) -> None:
    curves = curves[np.isfinite(curves).all(axis=1)]
    if len(curves) > 2:
        alpha = (1 - confidence) / 2
        ax.fill_between(
            grid, np.quantile(curves, alpha, 0), np.quantile(curves, 1 - alpha, 0), color=color, alpha=0.15, lw=0
        )


def _boundary(ax, fit, name: str, color, style: str, label: str) -> None:
    """A regime boundary where it lies in the plotted range, its interval shaded only if the data constrain it."""
    lo_x, hi_x = ax.get_xlim()
    value, constraint = fit[name], fit[name + "_constraint"]
    if constraint == "constrained":
        ax.axvspan(max(fit[name + "_lo"], lo_x), min(fit[name + "_hi"], hi_x), color=color, alpha=0.08, lw=0)
    if np.isfinite(value) and lo_x <= value <= hi_x:
        ax.axvline(value, color=color, ls=style, lw=1, alpha=0.8, label=f"{label} ({constraint})")


def steps_to_result_figure(
    steps: pd.DataFrame, fits: pd.DataFrame, bootstrap: pd.DataFrame, path, confidence: float = 0.9
):
    """Per (workload, optimizer): measured steps (bar down to the interpolated crossing bound), the
    perfect-scaling line, both fits with bootstrap bands, and the regime boundaries with intervals."""
    keys = sorted(steps[FIT_KEYS].drop_duplicates().itertuples(index=False, name=None))
    figure, axes = _panels(len(keys))
    for ax, (workload, optimizer) in zip(axes, keys):
        rows = _study_rows(steps, workload, optimizer)
        ax.set_title(f"{workload}, {optimizer_label(optimizer)}", fontsize=10)
        _log2_axes(ax)
        ax.set_ylabel("steps to result")
        if rows.empty:
            ax.text(0.5, 0.5, "no batch size reached the goal", transform=ax.transAxes, ha="center")
            continue
        color = OPTIMIZER_COLORS.get(optimizer, "black")
        b, s = rows["batch_size"].to_numpy(float), rows["steps_to_result"].to_numpy(float)
        interval = rows["eval_interval"].to_numpy(float) if "eval_interval" in rows else np.zeros_like(s)
        # The true crossing lies within one evaluation interval before the first evaluation past the goal.
        ax.errorbar(
            b,
            s,
            yerr=[np.minimum(np.nan_to_num(interval), s * 0.999), np.zeros_like(s)],
            fmt="o",
            color=color,
            ms=5,
            capsize=2,
            label="measured (bar: evaluation interval)",
        )
        grid = np.geomspace(b.min() / 1.5, b.max() * 1.5, 200)
        ax.plot(grid, s[0] * b[0] / grid, ":", color="0.4", lw=1, label="perfect scaling")
        fit = _fit_row(fits, workload, optimizer)
        samples = bootstrap[(bootstrap["workload"] == workload) & (bootstrap["optimizer"] == optimizer)]
        if fit is not None and np.isfinite(fit["s_min"]):
            ax.plot(
                grid,
                scaling_curve(grid, fit["s_min"], fit["b_crit"]),
                "-",
                color=color,
                lw=1.5,
                label="S_min (1 + B_crit/B)",
            )
            _band(
                ax,
                grid,
                scaling_curve(
                    grid[None, :], samples["s_min"].to_numpy()[:, None], samples["b_crit"].to_numpy()[:, None]
                ),
                confidence,
                color,
            )
        if fit is not None and np.isfinite(fit["piecewise_e_min"]):
            params = [
                "piecewise_e_min",
                "piecewise_s_plateau",
                "piecewise_transition_start",
                "piecewise_transition_end",
            ]
            ax.plot(grid, piecewise_curve(grid, *fit[params]), "-.", color="0.2", lw=1, label="piecewise log-log fit")
            curves = (
                np.array([piecewise_curve(grid, *p) for p in samples[params].dropna().to_numpy()])
                if len(samples)
                else np.empty((0, len(grid)))
            )
            _band(ax, grid, curves.reshape(-1, len(grid)), confidence, "0.3")
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(s.min() / 3, s.max() * 1.5)
        if fit is not None:
            _boundary(ax, fit, "piecewise_b_perfect_end", "tab:purple", "--", "perfect scaling ends")
            _boundary(ax, fit, "piecewise_b_max_useful", "tab:orange", "--", "max useful batch size")
        ax.legend(fontsize=6, loc="lower left")
    figure.suptitle(
        f"Steps to result vs batch size (bands and shaded intervals: {confidence:.0%} bootstrap)", fontsize=11
    )
    save(figure, path)


def normalized_steps_figure(steps: pd.DataFrame, path):
    """Every workload on one plot: steps divided by the steps at its smallest batch size (reference optimizer)."""
    colors = workload_colors(steps["workload"])
    figure, ax = plt.subplots(figsize=(6.4, 4.8))
    references = set()
    for workload in sorted(steps["workload"].unique()):
        optimizer = reference_optimizer(steps.loc[steps["workload"] == workload, "optimizer"].unique())
        rows = _study_rows(steps, workload, optimizer)
        if rows.empty:
            continue
        b, s = rows["batch_size"].to_numpy(float), rows["steps_to_result"].to_numpy(float)
        ax.plot(b, s / s[0], "o-", color=colors[workload], label=f"{workload} ({optimizer_label(optimizer)})")
        references.add(b[0])
    for b0 in sorted(references):
        grid = np.geomspace(b0, steps["batch_size"].max(), 50)
        ax.plot(grid, b0 / grid, ":", color="0.5", lw=1)
    _log2_axes(ax)
    ax.set_ylabel("steps to result / steps at smallest batch size")
    ax.set_title("All workloads, normalised (dotted: perfect scaling)", fontsize=10)
    if references:
        ax.legend(fontsize=7)
    save(figure, path)


def optimizer_comparison_figure(steps: pd.DataFrame, fits: pd.DataFrame, path):
    """Per workload: steps to result of every optimizer, each with its fitted S(B) and perfect scaling."""
    workloads = sorted(steps["workload"].unique())
    figure, axes = _panels(len(workloads))
    for ax, workload in zip(axes, workloads):
        for optimizer in sorted(steps.loc[steps["workload"] == workload, "optimizer"].unique()):
            rows = _study_rows(steps, workload, optimizer)
            if rows.empty:
                continue
            color = OPTIMIZER_COLORS.get(optimizer, "black")
            b, s = rows["batch_size"].to_numpy(float), rows["steps_to_result"].to_numpy(float)
            ax.plot(b, s, OPTIMIZER_MARKERS.get(optimizer, "o"), color=color, label=optimizer_label(optimizer))
            ax.plot(b, s[0] * b[0] / b, ":", color=color, lw=1, alpha=0.6)
            fit = _fit_row(fits, workload, optimizer)
            if fit is not None and np.isfinite(fit["s_min"]):
                grid = np.geomspace(b.min(), b.max(), 100)
                ax.plot(grid, scaling_curve(grid, fit["s_min"], fit["b_crit"]), "-", color=color, lw=1.2)
        _log2_axes(ax)
        ax.set_title(workload, fontsize=10)
        ax.set_ylabel("steps to result")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, title="dotted: perfect scaling; line: S(B) fit", title_fontsize=6)
    save(figure, path)


def variants_figure(steps: pd.DataFrame, groups: dict[str, list[str]], labels: dict[str, str], path, kind: str):
    """Per group of variant workloads: steps to result normalised at the smallest batch size all reached."""
    if not groups:
        _empty(path, f"The study config defines no {kind} variants.")
        return
    colors = workload_colors(steps["workload"])
    figure, axes = _panels(len(groups), columns=2, width=5.6)
    for ax, (group, workloads) in zip(axes, sorted(groups.items())):
        curves = {}
        for workload in workloads:
            optimizer = (
                reference_optimizer(steps.loc[steps["workload"] == workload, "optimizer"].unique())
                if (steps["workload"] == workload).any()
                else None
            )
            rows = _study_rows(steps, workload, optimizer) if optimizer else pd.DataFrame()
            if len(rows):
                curves[workload] = (optimizer, rows.set_index("batch_size")["steps_to_result"])
        common = sorted(set.intersection(*(set(c.index) for _, c in curves.values()))) if curves else []
        for workload, (optimizer, curve) in curves.items():
            # Normalise at the smallest batch size every variant reached (its own smallest if none is shared).
            reference = common[0] if common else curve.index.min()
            ax.plot(
                curve.index,
                curve / curve[reference],
                "o-",
                color=colors[workload],
                label=f"{labels.get(workload, workload)} [{optimizer_label(optimizer)}]",
            )
        _log2_axes(ax)
        b = np.array(sorted(steps["batch_size"].unique()), float)
        if common:
            grid = b[b >= common[0]]
            ax.plot(grid, common[0] / grid, ":", color="0.5", lw=1, label="perfect scaling")
        ax.set_ylabel("steps / steps at reference batch size")
        ax.set_title(group, fontsize=9)
        ax.legend(fontsize=7)
    save(figure, path)


def learning_rate_figure(steps: pd.DataFrame, path):
    """Best learning rate, effective learning rate lr/(1-momentum) and momentum vs batch size; linear and
    square-root scaling drawn through the smallest batch size."""
    workloads = sorted(steps["workload"].unique())
    quantities = ["learning_rate", "effective_learning_rate"]
    if (steps["momentum"].fillna(0) > 0).any():
        quantities.append("momentum")
    figure, axes = plt.subplots(
        len(quantities),
        len(workloads),
        figsize=(4.6 * len(workloads), 3.7 * len(quantities)),
        squeeze=False,
        layout="constrained",
    )
    for column, workload in enumerate(workloads):
        for row, quantity in enumerate(quantities):
            ax = axes[row][column]
            for optimizer in sorted(steps.loc[steps["workload"] == workload, "optimizer"].unique()):
                rows = _study_rows(steps, workload, optimizer, quantity)
                if quantity == "momentum":
                    rows = rows[rows["momentum"] > 0]
                if rows.empty:
                    continue
                color = OPTIMIZER_COLORS.get(optimizer, "black")
                b, y = rows["batch_size"].to_numpy(float), rows[quantity].to_numpy(float)
                if quantity == "momentum":
                    ax.plot(b, 1 - y, "o-", color=color, label=optimizer_label(optimizer))
                    continue
                ax.plot(b, y, "o-", color=color, label=optimizer_label(optimizer))
                ax.plot(b, y[0] * b / b[0], "--", color=color, lw=0.8, alpha=0.6)
                ax.plot(b, y[0] * np.sqrt(b / b[0]), ":", color=color, lw=0.8, alpha=0.6)
            _log2_axes(ax)
            ax.set_yscale("log")
            ax.set_title(workload, fontsize=10)
            ax.set_ylabel("best 1 - momentum" if quantity == "momentum" else "best " + quantity.replace("_", " "))
            if ax.get_legend_handles_labels()[0]:
                title = "" if quantity == "momentum" else "dashed: linear, dotted: square root"
                ax.legend(fontsize=7, title=title, title_fontsize=6)
    save(figure, path)


def metaparameter_figure(trials: pd.DataFrame, steps: pd.DataFrame, workload: str, optimizer: str, path):
    """Per batch size, every trial in (learning rate, 1 - momentum) space by outcome, coloured by steps to
    result; grey lines of constant effective learning rate; the best trial starred."""
    trials = trials[(trials["workload"] == workload) & (trials["optimizer"] == optimizer)]
    batch_sizes = sorted(trials["batch_size"].unique())
    if not batch_sizes:
        _empty(path, f"No trials of {workload}, {optimizer}.")
        return
    figure, axes = _panels(len(batch_sizes), width=3.4, height=3.0, columns=4)
    reached = trials[trials["status"] == REACHED]["steps_to_result"]
    norm = matplotlib.colors.LogNorm(vmin=max(reached.min(), 1), vmax=max(reached.max(), 2)) if len(reached) else None
    lr = trials["learning_rate"]
    one_minus = (1 - trials["momentum"]).clip(lower=1e-6)
    xlim = (lr.min() / 2, lr.max() * 2)
    ylim = (one_minus.min() / 2, min(one_minus.max() * 2, 2))
    mappable = None
    for ax, batch_size in zip(axes, batch_sizes):
        study = trials[trials["batch_size"] == batch_size]
        for effective in 10.0 ** np.arange(-4, 5):
            x = np.geomspace(*xlim, 10)
            ax.plot(x, x / effective, color="0.85", lw=0.7, zorder=0)
        for status, style in STATUS_STYLE.items():
            points = study[study["status"] == status]
            if points.empty:
                continue
            kwargs = dict(style)
            if status == REACHED:
                kwargs.update(c=points["steps_to_result"], cmap="viridis", norm=norm)
            artist = ax.scatter(points["learning_rate"], 1 - points["momentum"], s=22, **kwargs)
            mappable = artist if status == REACHED else mappable
        best = steps[
            (steps["workload"] == workload) & (steps["optimizer"] == optimizer) & (steps["batch_size"] == batch_size)
        ]
        if len(best) and best["best_trial"].iloc[0] >= 0:
            ax.scatter(
                best["learning_rate"],
                1 - best["momentum"],
                marker="*",
                s=180,
                color="gold",
                edgecolors="black",
                zorder=5,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_title(f"batch size {batch_size}", fontsize=9)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("1 - momentum")
    handles = [
        plt.Line2D(
            [],
            [],
            ls="",
            marker=style["marker"],
            color=style.get("color", "tab:green"),
            mfc="none" if "facecolors" in style else None,
            label=style["label"],
        )
        for style in STATUS_STYLE.values()
    ]
    handles.append(plt.Line2D([], [], ls="", marker="*", ms=12, color="gold", mec="black", label="best trial"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    if mappable is not None:
        figure.colorbar(mappable, ax=axes, shrink=0.8, label="steps to result")
    figure.suptitle(
        f"{workload}, {optimizer_label(optimizer)}: trials by outcome (grey: constant lr/(1-momentum))", fontsize=10
    )
    save(figure, path)


def solution_quality_figure(steps: pd.DataFrame, path, stopped_at_target: bool):
    """Best validation metric reached within the step budget vs batch size, with the goal."""
    workloads = sorted(steps["workload"].unique())
    figure, axes = _panels(len(workloads))
    for ax, workload in zip(axes, workloads):
        rows_w = steps[steps["workload"] == workload]
        for optimizer in sorted(rows_w["optimizer"].unique()):
            rows = _study_rows(steps, workload, optimizer, "best_val_metric")
            if len(rows):
                ax.plot(
                    rows["batch_size"],
                    rows["best_val_metric"],
                    OPTIMIZER_MARKERS.get(optimizer, "o") + "-",
                    color=OPTIMIZER_COLORS.get(optimizer, "black"),
                    label=optimizer_label(optimizer),
                )
        ax.axhline(rows_w["target_value"].iloc[0], color="0.3", ls="--", lw=1, label="goal")
        _log2_axes(ax, y=False)
        ax.set_title(workload, fontsize=10)
        ax.set_ylabel(f"best validation {rows_w['target_metric'].iloc[0].replace('_', ' ')}")
        ax.legend(fontsize=7)
    note = " (trials stopped at the goal: values past the goal are censored)" if stopped_at_target else ""
    figure.suptitle("Best validation metric within the step budget" + note, fontsize=10)
    save(figure, path)


def tuning_budget_figure(table: pd.DataFrame, path):
    """Per (workload, optimizer): median steps to result over random subsets of k trials, with spread."""
    keys = sorted(table[FIT_KEYS].drop_duplicates().itertuples(index=False, name=None))
    if not keys:
        _empty(path, "No trials.")
        return
    figure, axes = _panels(len(keys))
    budgets = sorted(table["budget"].unique())
    cmap = plt.get_cmap("plasma")
    for ax, (workload, optimizer) in zip(axes, keys):
        rows = table[(table["workload"] == workload) & (table["optimizer"] == optimizer)]
        for i, k in enumerate(budgets):
            curve = rows[rows["budget"] == k].sort_values("batch_size").dropna(subset=["steps_median"])
            if curve.empty:
                continue
            color = cmap(i / max(len(budgets) - 1, 1) * 0.85)
            ax.plot(curve["batch_size"], curve["steps_median"], "o-", color=color, ms=3, label=f"k = {k}")
            # An upper end where too few subsets reach the goal is infinite: the band runs off the top.
            ax.fill_between(
                curve["batch_size"],
                curve["steps_lo"],
                curve["steps_hi"].fillna(curve["steps_median"].max() * 4),
                color=color,
                alpha=0.12,
                lw=0,
            )
        _log2_axes(ax)
        if not ax.has_data():
            ax.text(0.5, 0.5, "no batch size reached the goal", transform=ax.transAxes, ha="center")
        ax.set_title(f"{workload}, {optimizer_label(optimizer)}", fontsize=10)
        ax.set_ylabel("steps to result")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, title="trials per study", title_fontsize=6)
    confidence = table["confidence"].iloc[0]
    figure.suptitle(
        f"Robustness to the tuning budget: median and {confidence:.0%} range over random subsets", fontsize=10
    )
    save(figure, path)


def noise_scale_figure(curves: pd.DataFrame, comparison: pd.DataFrame, path) -> None:
    """Top: B_simple vs training progress per workload, fitted B_crit bands per optimizer.
    Bottom: predicted B_simple vs fitted B_crit, with the B_crit intervals."""
    workloads = sorted(curves["workload"].unique())
    figure, axes = plt.subplots(2, max(len(workloads), 1), figsize=(5 * max(len(workloads), 1), 8), squeeze=False)
    for column, workload in enumerate(workloads):
        ax = axes[0][column]
        curve = curves[curves["workload"] == workload]
        ax.plot(curve["progress"], curve["b_simple"], "k-", label="B_simple (EMA)")
        for _, row in comparison[comparison["workload"] == workload].iterrows():
            color = OPTIMIZER_COLORS.get(row["optimizer"])
            ax.axhline(
                row["b_crit"], color=color, ls="--", lw=1, label=f"fitted B_crit, {optimizer_label(row['optimizer'])}"
            )
            ax.axhspan(row["b_crit_lo"], row["b_crit_hi"], color=color, alpha=0.12, lw=0)
            if row.get("b_simple_reached_target"):
                ax.axvline(row["b_simple_step"] / curve["step"].max(), color="0.5", ls=":", lw=1)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("fraction of the noise-scale run (dotted: target met)")
        ax.set_ylabel("batch size")
        ax.set_title(workload)
        ax.legend(fontsize=7)
    for column in range(len(workloads), axes.shape[1]):
        axes[0][column].set_visible(False)
    ax = axes[1][0]
    markers = dict(zip(workloads, "osD^vP*X"))  # colour: optimizer, marker: workload
    for _, row in comparison.iterrows():
        color = OPTIMIZER_COLORS.get(row["optimizer"])
        error = [[max(row["b_crit"] - row["b_crit_lo"], 0)], [max(row["b_crit_hi"] - row["b_crit"], 0)]]
        ax.errorbar(
            row["b_simple"],
            row["b_crit"],
            yerr=error,
            fmt=markers.get(row["workload"], "o"),
            color=color,
            capsize=3,
            label=f"{row['workload']}, {optimizer_label(row['optimizer'])}",
        )
    values = comparison[["b_simple", "b_crit"]].to_numpy(float)
    values = values[np.isfinite(values) & (values > 0)]
    if len(values):
        grid = np.array([values.min() / 2, values.max() * 2])
        ax.plot(grid, grid, "k:", lw=1, label="B_crit = B_simple")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("predicted B_simple (at the target)")
    ax.set_ylabel("fitted B_crit (bars: bootstrap interval)")
    ax.legend(fontsize=7)
    for column in range(1, axes.shape[1]):
        axes[1][column].set_visible(False)
    save(figure, path)
