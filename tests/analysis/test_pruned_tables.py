"""Tables of a pruned study (config prune): the answer is the full run's; what needs complete trials says so.

The pruned tables are made here from a full synthetic study by the rule itself: once a trial
meets the goal at S, every other trial that has not met it by S stops there, pruned.
"""

import numpy as np
import pandas as pd
import pytest

from batch_science.analysis.fit import fit_workloads
from batch_science.analysis.robustness import budget_subsets, tuning_budget_table
from batch_science.analysis.steps import best_is_exact, best_trials
from batch_science.tables import STUDY_KEYS
from synthetic import synthetic_trials

ANSWER = ["steps_to_result", "best_trial", "learning_rate", "momentum", "effective_learning_rate", "decay_steps"]


def pruned_copy(trials: pd.DataFrame) -> pd.DataFrame:
    pruned = trials.copy()
    for _, rows in pruned.groupby(STUDY_KEYS):
        best = rows["steps_to_result"].min()
        late = rows.index[(rows["status"] != "infeasible") & ~(rows["steps_to_result"] <= best)]
        late = late[rows.loc[late, "step_budget"] > best]
        pruned.loc[late, ["status", "steps_to_result", "final_step"]] = ["pruned", np.nan, best]
    return pruned


@pytest.fixture(scope="module")
def studies():
    full = synthetic_trials(12, noise=0.4, eval_every=5, infeasible_fraction=0.1)
    return full, pruned_copy(full)


def test_the_best_trial_of_every_study_is_the_full_runs(studies):
    full, pruned = studies
    assert (pruned["status"] == "pruned").sum() > len(pruned) / 2
    best_full, best_pruned = best_trials(full), best_trials(pruned)
    pd.testing.assert_frame_equal(best_pruned[STUDY_KEYS + ANSWER], best_full[STUDY_KEYS + ANSWER])
    assert best_is_exact(pruned, best_pruned).all()
    counted = pruned.assign(p=pruned["status"] == "pruned").groupby(STUDY_KEYS)["p"].sum().to_numpy()
    assert (best_pruned["n_pruned"].to_numpy() == counted).all()
    assert (best_full["n_pruned"] == 0).all()


def test_a_subset_is_called_exact_only_where_it_is_the_full_runs(studies):
    """Subsets of the same positions in both tables: where best_is_exact holds, the pruned subset's
    best is the full one's; where it does not, some subset shows why (it would be wrong)."""
    full, pruned = studies
    by = ("budget", "resample")
    subsets_full = budget_subsets(full, 20, np.random.default_rng(1))
    subsets_pruned = budget_subsets(pruned, 20, np.random.default_rng(1))
    best_full, best_pruned = best_trials(subsets_full, by=by), best_trials(subsets_pruned, by=by)
    exact = best_is_exact(subsets_pruned, best_pruned, by=by)
    same = (best_full["best_trial"] == best_pruned["best_trial"]) & (
        best_full["steps_to_result"].fillna(-1) == best_pruned["steps_to_result"].fillna(-1)
    )
    assert same[exact].all()
    assert (~same[~exact]).any() and 0 < exact.mean() < 1


def test_fits_and_their_intervals_equal_the_full_runs(studies):
    """The fits and their bootstrap read only each batch size's best trial, which pruning keeps."""
    full, pruned = studies
    fit_full, samples_full = fit_workloads(full, n_bootstrap=30)
    fit_pruned, samples_pruned = fit_workloads(pruned, n_bootstrap=30)
    pd.testing.assert_frame_equal(fit_pruned, fit_full, check_exact=True)
    pd.testing.assert_frame_equal(samples_pruned, samples_full, check_exact=True)
    assert samples_full["s_min"].notna().any()


def test_tuning_budget_table_says_where_it_is_a_bound(studies):
    full, pruned = studies
    table_full, table_pruned = tuning_budget_table(full, 20), tuning_budget_table(pruned, 20)
    assert (table_full["fraction_exact"] == 1).all()
    everything = table_pruned["budget"] == 12
    assert (table_pruned.loc[everything, "fraction_exact"] == 1).all()
    assert (table_pruned.loc[~everything, "fraction_exact"] < 1).any()
    # A subset's best from trials cut short is never faster than the full run's.
    steps = lambda table: table["steps_median"].fillna(np.inf).to_numpy()  # noqa: E731
    assert (steps(table_pruned) >= steps(table_full)).all()
