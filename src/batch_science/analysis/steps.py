"""Steps to result: per trial from its curve, per study as the best trial."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from batch_science.tables import STEPS_TO_RESULT_COLUMNS, STUDY_KEYS
from batch_science.trials import DIRECTIONS, INFEASIBLE, OWN_METAPARAMETER_KEYS, PRUNED, Target


def trial_steps_to_result(curve: pd.DataFrame, metric: str, target_value: float, direction: str = "minimize") -> float:
    """First evaluated step at which a trial's validation metric meets the target (NaN if never)."""
    target = Target(metric, target_value, direction)
    curve = curve.sort_values("step")
    hits = curve["step"].to_numpy()[target.met(curve[target.column].to_numpy(float))]
    return float(hits[0]) if len(hits) else math.nan


def trial_steps_interpolated(
    curve: pd.DataFrame, metric: str, target_value: float, direction: str = "minimize"
) -> float:
    """Steps at which the metric crosses the target, linearly interpolated between evaluations.

    The first-evaluation value overestimates by less than one evaluation interval; this one
    estimates the crossing inside that interval.
    """
    target = Target(metric, target_value, direction)
    curve = curve.sort_values("step")
    steps, values = curve["step"].to_numpy(float), curve[target.column].to_numpy(float)
    hit = np.flatnonzero(target.met(values))
    if not len(hit):
        return math.nan
    i = hit[0]
    if i == 0 or values[i] == values[i - 1]:
        return steps[i]
    fraction = (values[i - 1] - target_value) / (values[i - 1] - values[i])
    return float(steps[i - 1] + np.clip(fraction, 0, 1) * (steps[i] - steps[i - 1]))


def best_trials(trials: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per study: the trial that reached the target in the fewest steps.

    Ties go to the lowest trial id (evaluations ordered by step, then trial id). Infeasible
    trials never count: `n_trials` counts the feasible ones (the release's COMPLETE trials, as the
    paper counts them), `n_infeasible` the others. Studies where no trial reached the target get NaN steps. Pruned
    trials (config prune) cannot win, so the best trial is that of a full run; the counts and the best
    metric are of what was trained (n_pruned says how many trials stopped early).
    `by` names extra grouping columns (e.g. a resample index) that come first in the result,
    so many resamples of the trials are scored in one call.
    """
    keys = [*by, *STUDY_KEYS]
    infeasible = trials["status"] == INFEASIBLE
    steps = trials["steps_to_result"].to_numpy(float)
    reached = ~infeasible & np.isfinite(steps)
    sign = trials["target_direction"].map(DIRECTIONS).to_numpy(float)
    # Best metric of feasible trials, signed so that "best" is always the minimum.
    signed_metric = trials["best_val_metric"].where(~infeasible) * sign
    counts = (
        trials.assign(
            _infeasible=infeasible,
            _feasible=~infeasible,
            _reached=reached,
            _pruned=trials["status"] == PRUNED,
            _signed_metric=signed_metric,
        )
        .groupby(keys, sort=True)
        .agg(
            n_trials=("_feasible", "sum"),
            n_infeasible=("_infeasible", "sum"),
            n_reached=("_reached", "sum"),
            n_pruned=("_pruned", "sum"),
            step_budget=("step_budget", "first"),
            target_metric=("target_metric", "first"),
            target_value=("target_value", "first"),
            target_direction=("target_direction", "first"),
            _signed_metric=("_signed_metric", "min"),
        )
        .reset_index()
    )
    counts["best_val_metric"] = counts["_signed_metric"] * counts["target_direction"].map(DIRECTIONS).to_numpy(float)
    winners = (
        trials[reached]
        .sort_values([*keys, "steps_to_result", "trial_id"])
        .drop_duplicates(keys)
        .rename(columns={"trial_id": "best_trial"})
    )
    winner_columns = [
        "steps_to_result",
        "best_trial",
        "learning_rate",
        "momentum",
        "effective_learning_rate",
        "decay_steps",
        "end_factor",
        "label_smoothing",
        *(column for column in OWN_METAPARAMETER_KEYS if column in trials),
    ]
    best = counts.merge(winners[[*keys, *winner_columns]], on=keys, how="left")
    best["best_trial"] = best["best_trial"].fillna(-1).astype(int)
    best["steps_to_result"] = best["steps_to_result"].astype(float)
    best = best.astype(
        {
            "n_trials": int,
            "n_infeasible": int,
            "n_reached": int,
            "n_pruned": int,
            "step_budget": int,
            "target_value": float,
        }
    )
    return best.reindex(columns=[*by, *STEPS_TO_RESULT_COLUMNS])


def best_is_exact(trials: pd.DataFrame, best: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.Series:
    """Whether each row of `best` (best_trials(trials, by)) is what the trials would give unpruned.

    A pruned trial met no goal up to its final step, so it needs more steps than that, if it ever
    meets it: a study's best is exact when no pruned trial among its trials stopped before the best
    trial's steps to result. Pruning keeps a whole study exact by construction; a subset of its
    trials (bootstrap, tuning budget) may miss the trial that made the others stop.
    """
    keys = [*by, *STUDY_KEYS]
    stopped = trials[trials["status"] == PRUNED].groupby(keys)["final_step"].min().rename("_pruned_at")
    pruned_at = best.join(stopped, on=keys)["_pruned_at"]
    return pruned_at.isna() | (best["steps_to_result"] <= pruned_at)


def with_interpolated_steps(best: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Add the best trial's interpolated crossing and the evaluation interval that bounds the error."""
    best = best.copy()
    interpolated, interval = [], []
    for _, row in best.iterrows():
        if row["best_trial"] < 0:
            interpolated.append(math.nan)
            interval.append(math.nan)
            continue
        curve = curves[
            (curves["workload"] == row["workload"])
            & (curves["optimizer"] == row["optimizer"])
            & (curves["batch_size"] == row["batch_size"])
            & (curves["trial_id"] == row["best_trial"])
        ].sort_values("step")
        interpolated.append(
            trial_steps_interpolated(curve, row["target_metric"], row["target_value"], row["target_direction"])
        )
        before = curve["step"][curve["step"] < row["steps_to_result"]]
        interval.append(float(row["steps_to_result"] - before.iloc[-1]) if len(before) else 0.0)
    best["steps_interpolated"] = interpolated
    best["eval_interval"] = interval
    return best
