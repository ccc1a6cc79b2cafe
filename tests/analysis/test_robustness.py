"""Tuning-budget robustness: subsets of k trials, each scored like a full study."""

import numpy as np
import pandas as pd

from batch_science.analysis.robustness import budget_subsets, tuning_budget_table, tuning_budgets
from batch_science.analysis.steps import best_trials
from synthetic import synthetic_trials


def test_budgets_double_up_to_all_trials():
    assert tuning_budgets(16) == [2, 4, 8, 16]
    assert tuning_budgets(12) == [2, 4, 8, 12]
    assert tuning_budgets(1) == [1]


def test_subsets_hold_k_distinct_trials_of_one_study():
    trials = synthetic_trials(10, batch_sizes=[8, 64])
    subsets = budget_subsets(trials, n_resamples=5, rng=np.random.default_rng(0))
    for (b, k, _), subset in subsets.groupby(["batch_size", "budget", "resample"]):
        assert len(subset) == k == subset["trial_id"].nunique()
        assert (subset["batch_size"] == b).all()
    assert subsets.groupby("budget")["resample"].nunique().to_dict() == {2: 5, 4: 5, 8: 5, 10: 1}


def test_full_budget_reproduces_the_study_and_small_budgets_are_slower():
    trials = synthetic_trials(16, noise=0.5, seed=3)
    table = tuning_budget_table(trials, n_resamples=50)
    full = table[table["budget"] == 16].set_index("batch_size")["steps_median"]
    expected = best_trials(trials).set_index("batch_size")["steps_to_result"]
    pd.testing.assert_series_equal(full, expected, check_names=False)
    median_by_budget = table.groupby("budget")["steps_median"].mean()
    assert median_by_budget.is_monotonic_decreasing
    assert (table["steps_lo"] <= table["steps_median"]).all() and (table["steps_median"] <= table["steps_hi"]).all()


def test_median_is_missing_when_most_subsets_never_reach():
    trials = synthetic_trials(8, batch_sizes=[8])
    trials.loc[trials["trial_id"] > 0, ["status", "steps_to_result"]] = ["not_reached", np.nan]
    row = tuning_budget_table(trials, n_resamples=200).set_index("budget").loc[2]
    assert 0.15 < row["fraction_reached"] < 0.35  # one good trial of 8 is in 2/8 of the pairs
    assert np.isnan(row["steps_median"])
