"""summary.md says only what the tables show: one batch size, none reached, imported data, mixed metrics."""

import numpy as np
import pandas as pd
import yaml

from batch_science.analysis.fit import fit_workloads
from batch_science.analysis.report import number
from batch_science.analysis.robustness import tuning_budget_table
from batch_science.analysis.steps import best_trials
from batch_science.analysis.summary import study_summary
from synthetic import synthetic_trials


def summary_of(trials, stopped_at_target=False):
    fits, _ = fit_workloads(trials, n_bootstrap=5)
    return study_summary(
        best_trials(trials), fits, tuning_budget_table(trials, n_resamples=5), "s", 0.9, stopped_at_target
    )


def paragraph(text, start):
    return next(p for p in text.split("\n\n") if p.startswith(start))


def test_one_batch_size_claims_no_speed_up():
    trials = synthetic_trials(4, batch_sizes=[64], optimizer="sgd", infeasible_fraction=0.4, seed=1)
    text = paragraph(summary_of(trials), "**w, SGD**")
    best = trials[trials["status"] == "reached"]["steps_to_result"].min()
    n_infeasible = int((trials["status"] == "infeasible").sum())
    assert 0 < n_infeasible < 4
    assert f"{4 - n_infeasible} feasible trials per batch size, {n_infeasible} infeasible" in text
    assert "reached at 1 of 1 batch sizes" in text
    assert f"It took {best:g} steps at batch size 64" in text and "not measured" in text
    assert "speed-up" not in text and "fell from" not in text
    assert "fits below" not in text  # there are none


def test_two_batch_sizes_fit_but_say_the_fit_is_not_constrained():
    text = paragraph(summary_of(synthetic_trials(3, batch_sizes=[8, 512], optimizer="sgd")), "**w, SGD**")
    assert "a speed-up of" in text and "the fits below are not constrained by the data" in text and "S_min" in text


def test_no_batch_size_reached_says_so_and_nothing_else():
    trials = synthetic_trials(3, batch_sizes=[8, 64, 512], optimizer="sgd")
    trials[["status", "steps_to_result"]] = ["not_reached", np.nan]
    text = paragraph(summary_of(trials), "**w, SGD**")
    assert text.endswith("No batch size reached the goal within its step budget.")
    assert "speed-up" not in text and "B_crit" not in text


def test_solution_quality_is_given_per_metric_and_censoring_only_when_trials_stopped():
    errors = synthetic_trials(3, batch_sizes=[8, 64], workload="images")
    losses = synthetic_trials(3, batch_sizes=[8, 64], workload="text").assign(target_metric="cross_entropy")
    errors["best_val_metric"] = 0.01 * (1 + np.arange(len(errors)))  # 0.01 ... 0.06
    losses["best_val_metric"] = 3.0 + 0.1 * np.arange(len(losses))  # 3.0 ... 3.5
    trials = pd.concat([errors, losses], ignore_index=True)
    text = summary_of(trials, stopped_at_target=False)
    quality = paragraph(text, "Solution quality")
    for metric in ("error", "cross_entropy"):
        # The best value of each study is the best of its feasible trials; the range runs over studies.
        values = trials[(trials["target_metric"] == metric) & (trials["status"] != "infeasible")]
        per_study = values.groupby(["workload", "batch_size"])["best_val_metric"].min()
        assert f"validation {metric} {number(per_study.min())}-{number(per_study.max())}" in quality
    assert "only show that the goal was met" not in text
    assert "only show that the goal was met" in summary_of(trials, stopped_at_target=True)


def test_imported_release_summary_claims_no_stopping_at_the_goal(tmp_path):
    """The paper's trials trained to their budget: the imported config says so, and so the summary."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "release"))
    from test_release_tolerance import release as release_fixture

    from batch_science.release.importer import import_release

    make = getattr(release_fixture, "_get_wrapped_function", None)
    root = (make() if make else release_fixture.__wrapped__)(tmp_path)
    out = import_release(root, "paper", tmp_path / "results")
    config = yaml.safe_load((out / "config.yaml").read_text())
    trials = pd.read_parquet(out / "trials.parquet")
    text = summary_of(trials, stopped_at_target=config["stop_at_target"])
    assert config["stop_at_target"] is False and "stopped" not in text
    open_images = paragraph(text, "**open_images_v4_resnet_50, Nesterov momentum**")
    assert "goal: validation average_precision > 0.31" in open_images and "(not at 128)" in open_images
