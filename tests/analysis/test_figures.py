"""Every figure draws from the tables alone, also where a study reached nothing or a fit failed."""

import numpy as np
import pandas as pd

from batch_science.analysis import figures
from batch_science.analysis.fit import fit_workloads
from batch_science.analysis.robustness import tuning_budget_table
from batch_science.analysis.steps import best_trials, with_interpolated_steps
from synthetic import synthetic_curves, synthetic_trials


def test_figures_cope_with_studies_that_reach_nothing(tmp_path):
    reached = synthetic_trials(3, batch_sizes=[8, 64, 512], optimizer="nesterov", eval_every=5)
    never = synthetic_trials(3, batch_sizes=[8, 64, 512], optimizer="sgd", eval_every=5, seed=1)
    never[["status", "steps_to_result"]] = ["not_reached", np.nan]
    trials = pd.concat([reached, never], ignore_index=True)
    steps = with_interpolated_steps(best_trials(trials), synthetic_curves(trials))
    fits, bootstrap = fit_workloads(trials, n_bootstrap=5)
    assert fits.set_index("optimizer").loc["sgd", "b_crit_constraint"] == "unconstrained"
    paths = {
        name: tmp_path / f"{name}.png"
        for name in ["steps", "normalized", "optimizers", "variants", "lr", "meta", "quality", "budget"]
    }
    figures.steps_to_result_figure(steps, fits, bootstrap, paths["steps"])
    figures.normalized_steps_figure(steps, paths["normalized"])
    figures.optimizer_comparison_figure(steps, fits, paths["optimizers"])
    figures.variants_figure(steps, {}, {}, paths["variants"], "model")
    figures.learning_rate_figure(steps, paths["lr"])
    figures.metaparameter_figure(trials, steps, "w", "sgd", paths["meta"])
    figures.solution_quality_figure(steps, paths["quality"], stopped_at_target=True)
    figures.tuning_budget_figure(tuning_budget_table(trials, n_resamples=5), paths["budget"])
    for path in paths.values():
        assert path.stat().st_size > 0 and path.with_suffix(".pdf").stat().st_size > 0


def test_workload_colours_do_not_depend_on_which_figure_asks():
    assert figures.workload_colors(["b", "a", "c"])["b"] == figures.workload_colors(["c", "b", "a", "b"])["b"]
    assert figures.reference_optimizer(["sgd", "nesterov"]) == "nesterov"
    assert figures.reference_optimizer(["sgd"]) == "sgd"


def drawn_figures(monkeypatch):
    """The figures a call draws, kept open (they are still written to disk)."""
    drawn = []

    def keep(figure, path):
        drawn.append(figure)
        figure.savefig(path)  # written, but not closed, so that the test can read its artists

    monkeypatch.setattr(figures, "save", keep)
    return drawn


def partly_reached():
    """Nesterov misses the goal at the largest batch size, SGD at the two largest."""
    batch_sizes = [8, 32, 128, 512, 2048]
    nesterov = synthetic_trials(4, batch_sizes=batch_sizes, optimizer="nesterov", eval_every=5)
    sgd = synthetic_trials(4, batch_sizes=batch_sizes, optimizer="sgd", eval_every=5, seed=1)
    nesterov.loc[nesterov["batch_size"] == 2048, ["status", "steps_to_result"]] = ["not_reached", np.nan]
    sgd.loc[sgd["batch_size"] >= 512, ["status", "steps_to_result"]] = ["not_reached", np.nan]
    trials = pd.concat([nesterov, sgd], ignore_index=True)
    return trials, with_interpolated_steps(best_trials(trials), synthetic_curves(trials))


def not_reached_points(ax):
    lines = [line for line in ax.get_lines() if "not reached" in str(line.get_label())]
    return [(x, y) for line in lines for x, y in zip(line.get_xdata(), line.get_ydata())]


def test_batch_sizes_that_reach_nothing_are_drawn_at_their_budget(tmp_path, monkeypatch):
    trials, steps = partly_reached()
    fits, bootstrap = fit_workloads(trials, n_bootstrap=5)
    drawn = drawn_figures(monkeypatch)
    figures.steps_to_result_figure(steps, fits, bootstrap, tmp_path / "steps.png")
    figures.optimizer_comparison_figure(steps, fits, tmp_path / "optimizers.png")
    budget = steps.set_index(["optimizer", "batch_size"])["step_budget"]
    by_title = {ax.get_title(): ax for ax in drawn[0].axes}
    assert not_reached_points(by_title["w, Nesterov momentum"]) == [(2048, budget["nesterov", 2048])]
    assert not_reached_points(by_title["w, SGD"]) == [(512, budget["sgd", 512]), (2048, budget["sgd", 2048])]
    for ax in by_title.values():  # the budget markers lie inside the drawn range
        assert all(ax.get_ylim()[0] < y < ax.get_ylim()[1] for _, y in not_reached_points(ax))
    assert sorted(not_reached_points(drawn[1].axes[0])) == sorted(
        [(2048, budget["nesterov", 2048]), (512, budget["sgd", 512]), (2048, budget["sgd", 2048])]
    )
    never = steps.assign(steps_to_result=np.nan)
    figures.steps_to_result_figure(never, fits, bootstrap, tmp_path / "never.png")
    assert len(not_reached_points(drawn[2].axes[0])) == 5  # no batch size reached: all five at the budget


def test_tuning_budget_figure_shows_medians_and_how_often_subsets_reach(tmp_path, monkeypatch):
    trials, _ = partly_reached()
    table = tuning_budget_table(trials, n_resamples=20)
    drawn = drawn_figures(monkeypatch)
    figures.tuning_budget_figure(table, tmp_path / "budget.png")
    axes = [ax for ax in drawn[0].axes if ax.get_visible()]
    assert len(axes) == 4  # two (workload, optimizer) panels, each with its fraction-reached panel below
    top = next(ax for ax in axes if ax.get_title() == "w, SGD")
    bottom = next(
        ax for ax in axes if ax.get_ylabel().startswith("subsets") and ax.get_position().x0 == top.get_position().x0
    )
    sgd = table[table["optimizer"] == "sgd"]
    for k, line in zip(sorted(sgd["budget"].unique()), bottom.get_lines()[: sgd["budget"].nunique()]):
        rows = sgd[sgd["budget"] == k].sort_values("batch_size")
        assert list(line.get_ydata()) == list(rows["fraction_reached"])
    medians = {line.get_label(): line for line in top.get_lines()}
    full = sgd[sgd["budget"] == sgd["budget"].max()].dropna(subset=["steps_median"]).sort_values("batch_size")
    assert list(medians["all 4"].get_ydata()) == list(full["steps_median"])
    assert bottom.get_ylim()[0] < 0 and bottom.get_ylim()[1] > 1


def test_figure_pdfs_embed_truetype_fonts_not_type3(tmp_path):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.set_title("steps to result")
    figures.save(figure, tmp_path / "figure.png")
    pdf = (tmp_path / "figure.pdf").read_bytes()
    # Type 3 fonts (matplotlib's PDF default) are what journals reject; Type 42 embeds the TrueType font.
    assert b"/Type3" not in pdf
    assert b"/FontFile2" in pdf  # an embedded TrueType font program
