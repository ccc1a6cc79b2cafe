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


def test_figure_pdfs_embed_truetype_fonts_not_type3(tmp_path):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.set_title("steps to result")
    figures.save(figure, tmp_path / "figure.png")
    pdf = (tmp_path / "figure.pdf").read_bytes()
    # Type 3 fonts (matplotlib's PDF default) are what journals reject; Type 42 embeds the TrueType font.
    assert b"/Type3" not in pdf
    assert b"/FontFile2" in pdf  # an embedded TrueType font program
