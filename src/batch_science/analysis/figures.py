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
from batch_science.trials import INFEASIBLE, MOMENTUM_KEYS, NOT_REACHED, PRUNED, REACHED  # noqa: E402

# How each optimizer of trials.OPTIMIZERS is drawn: (label, colour, marker).
OPTIMIZER_STYLE = {
    "sgd": ("SGD", "#1f77b4", "o"),
    "momentum": ("Momentum", "#d62728", "s"),
    "nesterov": ("Nesterov momentum", "#2ca02c", "^"),
    "adam": ("Adam", "#9467bd", "D"),
}
OPTIMIZER_LABELS = {name: label for name, (label, _, _) in OPTIMIZER_STYLE.items()}
OPTIMIZER_COLORS = {name: color for name, (_, color, _) in OPTIMIZER_STYLE.items()}
OPTIMIZER_MARKERS = {name: marker for name, (_, _, marker) in OPTIMIZER_STYLE.items()}
# The paper's headline curves use Nesterov momentum; a workload without it shows its first optimizer.
REFERENCE_OPTIMIZERS = ("nesterov", "momentum", "sgd", "adam")
STATUS_STYLE = {
    REACHED: dict(marker="o", label="goal reached"),
    NOT_REACHED: dict(marker="x", color="0.55", label="goal not reached"),
    INFEASIBLE: dict(marker="^", color="black", label="infeasible", facecolors="none"),
    PRUNED: dict(marker="+", color="tab:orange", label="pruned: stopped, could not win"),
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


def _not_reached_rows(steps: pd.DataFrame, workload: str, optimizer: str) -> pd.DataFrame:
    """Batch sizes at which no trial reached the goal (and whose step budget can be drawn)."""
    rows = steps[(steps["workload"] == workload) & (steps["optimizer"] == optimizer)]
    return rows[rows["steps_to_result"].isna() & (rows["step_budget"] > 0)].sort_values("batch_size")


# Batch sizes where no trial reached the goal: drawn at their step budget, never left out.
NOT_REACHED_STYLE = dict(marker="v", ls="", ms=7, mfc="none", mew=1.3)


def _mark_not_reached(ax, rows: pd.DataFrame, color, y=None, label="not reached (at the step budget)") -> None:
    if len(rows):
        y = rows["step_budget"].to_numpy(float) if y is None else y
        ax.plot(rows["batch_size"].to_numpy(float), y, color=color, label=label, **NOT_REACHED_STYLE)


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
        missed = _not_reached_rows(steps, workload, optimizer)
        ax.set_title(f"{workload}, {optimizer_label(optimizer)}", fontsize=10)
        _log2_axes(ax)
        ax.set_ylabel("steps to result")
        color = OPTIMIZER_COLORS.get(optimizer, "black")
        _mark_not_reached(ax, missed, color)
        if rows.empty:
            ax.text(0.5, 0.5, "no batch size reached the goal", transform=ax.transAxes, ha="center")
            if len(missed):
                ax.legend(fontsize=6, loc="lower left")
            continue
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
        every_b = np.concatenate([b, missed["batch_size"].to_numpy(float)])
        grid = np.geomspace(every_b.min() / 1.5, every_b.max() * 1.5, 200)
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
        ax.set_ylim(s.min() / 3, max(s.max(), missed["step_budget"].max() if len(missed) else 0) * 1.5)
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
    references, any_missed = set(), False
    for workload in sorted(steps["workload"].unique()):
        optimizer = reference_optimizer(steps.loc[steps["workload"] == workload, "optimizer"].unique())
        rows = _study_rows(steps, workload, optimizer)
        if rows.empty:
            continue
        b, s = rows["batch_size"].to_numpy(float), rows["steps_to_result"].to_numpy(float)
        ax.plot(b, s / s[0], "o-", color=colors[workload], label=f"{workload} ({optimizer_label(optimizer)})")
        missed = _not_reached_rows(steps, workload, optimizer)
        _mark_not_reached(ax, missed, colors[workload], missed["step_budget"].to_numpy(float) / s[0], None)
        any_missed = any_missed or len(missed) > 0
        references.add(b[0])
    for b0 in sorted(references):
        grid = np.geomspace(b0, steps["batch_size"].max(), 50)
        ax.plot(grid, b0 / grid, ":", color="0.5", lw=1)
    _log2_axes(ax)
    ax.set_ylabel("steps to result / steps at smallest batch size")
    ax.set_title("All workloads, normalised (dotted: perfect scaling)", fontsize=10)
    if any_missed:
        ax.plot([], [], color="0.3", label="not reached (at the step budget)", **NOT_REACHED_STYLE)
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
            color = OPTIMIZER_COLORS.get(optimizer, "black")
            _mark_not_reached(
                ax,
                _not_reached_rows(steps, workload, optimizer),
                color,
                label=f"{optimizer_label(optimizer)}: not reached",
            )
            if rows.empty:
                continue
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
            ax.legend(
                fontsize=7,
                title="dotted: perfect scaling; line: S(B) fit; open triangle: not reached, at the step budget",
                title_fontsize=6,
            )
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


def _momentum_of(rows: pd.DataFrame, optimizer: str) -> pd.Series:
    """The trials' (or best trials') coefficient in momentum's part: momentum, or Adam's beta1
    (trials.MOMENTUM_KEYS); zero where a table has no such column."""
    key = MOMENTUM_KEYS.get(optimizer, "momentum")
    return rows[key] if key in rows else pd.Series(0.0, index=rows.index)


def _momentum_label(optimizer: str) -> str:
    return f"1 - {MOMENTUM_KEYS.get(optimizer, 'momentum')}"


def learning_rate_figure(steps: pd.DataFrame, path):
    """Best learning rate, effective learning rate lr/(1-momentum) and momentum (Adam: beta1) vs batch
    size; linear and square-root scaling drawn through the smallest batch size."""
    workloads = sorted(steps["workload"].unique())
    quantities = ["learning_rate", "effective_learning_rate"]
    momenta = pd.concat([_momentum_of(rows, optimizer) for optimizer, rows in steps.groupby("optimizer")])
    if (momenta.fillna(0) > 0).any():
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
                rows = _study_rows(
                    steps, workload, optimizer, "steps_to_result" if quantity == "momentum" else quantity
                )
                if quantity == "momentum":
                    rows = rows[_momentum_of(rows, optimizer) > 0]
                if rows.empty:
                    continue
                color = OPTIMIZER_COLORS.get(optimizer, "black")
                b = rows["batch_size"].to_numpy(float)
                if quantity == "momentum":
                    y = _momentum_of(rows, optimizer).to_numpy(float)
                    label = f"{optimizer_label(optimizer)} ({_momentum_label(optimizer)})"
                    ax.plot(b, 1 - y, "o-", color=color, label=label)
                    continue
                y = rows[quantity].to_numpy(float)
                ax.plot(b, y, "o-", color=color, label=optimizer_label(optimizer))
                ax.plot(b, y[0] * b / b[0], "--", color=color, lw=0.8, alpha=0.6)
                ax.plot(b, y[0] * np.sqrt(b / b[0]), ":", color=color, lw=0.8, alpha=0.6)
            _log2_axes(ax)
            ax.set_yscale("log")
            ax.set_title(workload, fontsize=10)
            ax.set_ylabel(
                "best 1 - momentum (Adam: 1 - beta1)"
                if quantity == "momentum"
                else "best " + quantity.replace("_", " ")
            )
            if ax.get_legend_handles_labels()[0]:
                title = "" if quantity == "momentum" else "dashed: linear, dotted: square root"
                ax.legend(fontsize=7, title=title, title_fontsize=6)
    save(figure, path)


def metaparameter_figure(trials: pd.DataFrame, steps: pd.DataFrame, workload: str, optimizer: str, path):
    """Per batch size, every trial in (learning rate, 1 - momentum) space (Adam: 1 - beta1) by outcome,
    coloured by steps to result; grey lines of constant effective learning rate; the best trial starred."""
    trials = trials[(trials["workload"] == workload) & (trials["optimizer"] == optimizer)]
    batch_sizes = sorted(trials["batch_size"].unique())
    if not batch_sizes:
        _empty(path, f"No trials of {workload}, {optimizer}.")
        return
    figure, axes = _panels(len(batch_sizes), width=3.4, height=3.0, columns=4)
    reached = trials[trials["status"] == REACHED]["steps_to_result"]
    norm = matplotlib.colors.LogNorm(vmin=max(reached.min(), 1), vmax=max(reached.max(), 2)) if len(reached) else None
    lr = trials["learning_rate"]
    one_minus = (1 - _momentum_of(trials, optimizer)).clip(lower=1e-6)
    # Lines of constant lr/(1-momentum), the effective learning rate of heavy-ball momentum; Adam's
    # first moment is an average, so its effective learning rate is lr and they would mislead.
    contours = MOMENTUM_KEYS.get(optimizer, "momentum") == "momentum"
    xlim = (lr.min() / 2, lr.max() * 2)
    ylim = (one_minus.min() / 2, min(one_minus.max() * 2, 2))
    mappable = None
    for ax, batch_size in zip(axes, batch_sizes):
        study = trials[trials["batch_size"] == batch_size]
        for effective in 10.0 ** np.arange(-4, 5) if contours else ():
            x = np.geomspace(*xlim, 10)
            ax.plot(x, x / effective, color="0.85", lw=0.7, zorder=0)
        for status, style in STATUS_STYLE.items():
            points = study[study["status"] == status]
            if points.empty:
                continue
            kwargs = dict(style)
            if status == REACHED:
                kwargs.update(c=points["steps_to_result"], cmap="viridis", norm=norm)
            artist = ax.scatter(points["learning_rate"], 1 - _momentum_of(points, optimizer), s=22, **kwargs)
            mappable = artist if status == REACHED else mappable
        best = steps[
            (steps["workload"] == workload) & (steps["optimizer"] == optimizer) & (steps["batch_size"] == batch_size)
        ]
        if len(best) and best["best_trial"].iloc[0] >= 0:
            ax.scatter(
                best["learning_rate"],
                1 - _momentum_of(best, optimizer),
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
        ax.set_ylabel(_momentum_label(optimizer))
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
        f"{workload}, {optimizer_label(optimizer)}: trials by outcome"
        + (" (grey: constant lr/(1-momentum))" if contours else ""),
        fontsize=10,
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
    if "n_pruned" in steps and steps["n_pruned"].sum():
        note += "\n(pruned trials stopped early: each value is at most as good as a full run's)"
    figure.suptitle("Best validation metric within the step budget" + note, fontsize=10)
    save(figure, path)


def tuning_budget_figure(table: pd.DataFrame, path):
    """Per (workload, optimizer): on top, the median steps to result over random subsets of k trials
    (a light band: the spread); below, the fraction of subsets in which any trial reached the goal.

    A median is missing where fewer than half of the subsets reached the goal: the lower panel shows why.
    """
    keys = sorted(table[FIT_KEYS].drop_duplicates().itertuples(index=False, name=None))
    if not keys:
        _empty(path, "No trials.")
        return
    columns = min(len(keys), 3)
    rows_of_panels = math.ceil(len(keys) / columns)
    figure, axes = plt.subplots(
        2 * rows_of_panels,
        columns,
        figsize=(4.6 * columns, 5.2 * rows_of_panels),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1.4] * rows_of_panels},
        layout="constrained",
    )
    for index in range(len(keys), rows_of_panels * columns):
        axes[2 * (index // columns)][index % columns].set_visible(False)
        axes[2 * (index // columns) + 1][index % columns].set_visible(False)
    budgets = sorted(table["budget"].unique())
    colors = {k: plt.get_cmap("viridis")(i / max(len(budgets) - 1, 1) * 0.9) for i, k in enumerate(budgets)}
    for index, (workload, optimizer) in enumerate(keys):
        top, bottom = axes[2 * (index // columns)][index % columns], axes[2 * (index // columns) + 1][index % columns]
        bottom.sharex(top)  # each pair of panels shares its batch sizes, pairs do not
        rows = table[(table["workload"] == workload) & (table["optimizer"] == optimizer)]
        full = rows["budget"].max()
        for k in budgets:
            curve = rows[rows["budget"] == k].sort_values("batch_size")
            if curve.empty:
                continue
            label = f"all {k}" if k == full else f"k = {k}"
            bottom.plot(curve["batch_size"], curve["fraction_reached"], "o-", color=colors[k], ms=3, lw=1)
            medians = curve.dropna(subset=["steps_median"])
            if medians.empty:
                continue
            top.plot(medians["batch_size"], medians["steps_median"], "o-", color=colors[k], ms=3, lw=1.4, label=label)
            if k != full:  # the full budget is one subset: no spread
                top.fill_between(
                    medians["batch_size"],
                    medians["steps_lo"],
                    medians["steps_hi"].fillna(medians["steps_median"].max() * 4),
                    color=colors[k],
                    alpha=0.07,
                    lw=0,
                )
        _log2_axes(top)
        top.set_xlabel("")
        top.tick_params(labelbottom=False)
        medians = rows["steps_median"].dropna()
        if len(medians):  # an open-ended band runs off the top rather than squashing the medians
            top.set_ylim(medians.min() / 1.6, medians.max() * 2)
        if not top.has_data():
            top.text(
                0.5,
                0.5,
                "no median: fewer than half of the subsets reached the goal",
                transform=top.transAxes,
                ha="center",
                fontsize=8,
                wrap=True,
            )
        top.set_title(f"{workload}, {optimizer_label(optimizer)}", fontsize=10)
        top.set_ylabel("median steps to result")
        if top.get_legend_handles_labels()[0]:
            top.legend(fontsize=7, title="trials per study", title_fontsize=6)
        _log2_axes(bottom, y=False)
        bottom.set_ylim(-0.05, 1.05)
        bottom.axhline(0.5, color="0.6", ls=":", lw=0.8)
        bottom.set_ylabel("subsets reaching\nthe goal", fontsize=8)
    confidence = table["confidence"].iloc[0]
    note = ""
    if "fraction_exact" in table and (table["fraction_exact"] < 1).any():
        note = (
            f"\npruned trials: {1 - table['fraction_exact'].mean():.0%} of subsets lack the trial that stopped them; "
            "there steps are upper bounds"
        )
    figure.suptitle(
        f"Robustness to the tuning budget: median over random subsets of k trials (light band: {confidence:.0%} "
        "range); below, the fraction of subsets that reached the goal (dotted: half, below which no median)" + note,
        fontsize=9,
        wrap=True,
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
