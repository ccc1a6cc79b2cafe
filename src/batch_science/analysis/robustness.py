"""Robustness to the tuning budget: steps to result recomputed from random subsets of k trials.

With a smaller search budget the best trial of a study is found less reliably, so steps to
result rise and scatter; if the shape of the scaling curve survives small k, its conclusions
do not hinge on the number of trials. Each subset is scored by best_trials, as the full study.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from batch_science.analysis.steps import best_is_exact, best_trials
from batch_science.tables import STUDY_KEYS


def tuning_budgets(n_trials: int) -> list[int]:
    """k = 2, 4, 8, ... below the number of trials, and all of them."""
    budgets, k = [], 2
    while k < n_trials:
        budgets.append(k)
        k *= 2
    return [*budgets, n_trials]


def budget_subsets(trials: pd.DataFrame, n_resamples: int, rng: np.random.Generator) -> pd.DataFrame:
    """Random subsets (without replacement) of every study's trials for every budget k.

    Columns `budget` and `resample` are added; the full budget is one subset, all the trials.
    """
    positions, budgets, resamples = [], [], []
    for rows in trials.groupby(STUDY_KEYS, sort=True).indices.values():
        for k in tuning_budgets(len(rows)):
            draws = 1 if k == len(rows) else n_resamples
            chosen = np.argsort(rng.random((draws, len(rows))), axis=1)[:, :k]
            positions.append(rows[chosen].ravel())
            budgets.append(np.full(chosen.size, k))
            resamples.append(np.repeat(np.arange(draws), k))
    return trials.iloc[np.concatenate(positions)].assign(
        budget=np.concatenate(budgets), resample=np.concatenate(resamples)
    )


def tuning_budget_table(
    trials: pd.DataFrame, n_resamples: int = 100, confidence: float = 0.9, seed: int = 0
) -> pd.DataFrame:
    """Per study and budget k: median steps to result over resamples, its spread, how often any trial reached.

    A subset in which no trial reaches the goal counts as infinitely slow, so the median is
    missing (NaN) once fewer than half of the subsets reach it. With pruned trials (config prune),
    a subset without the trial that stopped them may not know its best: `fraction_exact` is the
    share of subsets that do; below 1 the steps are upper bounds and fraction_reached a lower one.
    """
    alpha = (1 - confidence) / 2
    subsets = budget_subsets(trials, n_resamples, np.random.default_rng(seed))
    best = best_trials(subsets, by=("budget", "resample"))
    best["exact"] = best_is_exact(subsets, best, by=("budget", "resample"))
    best["steps"] = best["steps_to_result"].fillna(np.inf)
    summary = (
        best.groupby([*STUDY_KEYS, "budget"], sort=True)
        .agg(
            n_resamples=("resample", "size"),
            fraction_reached=("steps_to_result", lambda s: float(np.isfinite(s).mean())),
            steps_median=("steps", lambda s: float(np.quantile(s, 0.5, method="inverted_cdf"))),
            steps_lo=("steps", lambda s: float(np.quantile(s, alpha, method="inverted_cdf"))),
            steps_hi=("steps", lambda s: float(np.quantile(s, 1 - alpha, method="inverted_cdf"))),
            fraction_exact=("exact", "mean"),
        )
        .reset_index()
    )
    return summary.replace([np.inf], np.nan).assign(confidence=confidence)
