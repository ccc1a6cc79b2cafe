"""Steps to result: per trial from its curve, per study as the best trial."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

STUDY_KEYS = ["workload", "optimizer", "batch_size"]
METRIC_COLUMNS = {"error": "val_error", "cross_entropy": "val_cross_entropy"}


def meets_target(values, target_value: float, direction: str = "minimize"):
    """Strictly better than the goal, as the paper's analysis code compares."""
    values = np.asarray(values, dtype=float)
    return values < target_value if direction == "minimize" else values > target_value


def trial_steps_to_result(curve: pd.DataFrame, metric: str, target_value: float, direction: str = "minimize") -> float:
    """First evaluated step at which a trial's validation metric meets the target (NaN if never)."""
    curve = curve.sort_values("step")
    hits = curve["step"].to_numpy()[meets_target(curve[METRIC_COLUMNS[metric]], target_value, direction)]
    return float(hits[0]) if len(hits) else math.nan


def trial_steps_interpolated(curve: pd.DataFrame, metric: str, target_value: float, direction: str = "minimize") -> float:
    """Steps at which the metric crosses the target, linearly interpolated between evaluations.

    The first-evaluation value overestimates by less than one evaluation interval; this one
    estimates the crossing inside that interval.
    """
    curve = curve.sort_values("step")
    steps, values = curve["step"].to_numpy(float), curve[METRIC_COLUMNS[metric]].to_numpy(float)
    hit = np.flatnonzero(meets_target(values, target_value, direction))
    if not len(hit):
        return math.nan
    i = hit[0]
    if i == 0 or values[i] == values[i - 1]:
        return steps[i]
    fraction = (values[i - 1] - target_value) / (values[i - 1] - values[i])
    return float(steps[i - 1] + np.clip(fraction, 0, 1) * (steps[i] - steps[i - 1]))


def best_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per study: the trial that reached the target in the fewest steps.

    Ties go to the lowest trial id (evaluations ordered by step, then trial id). Infeasible
    trials never count. Studies where no trial reached the target get NaN steps.
    """
    rows = []
    for key, study in trials.groupby(STUDY_KEYS, sort=True):
        feasible = study[study["status"] != "infeasible"]
        reached = feasible[np.isfinite(feasible["steps_to_result"].to_numpy(float))]
        row = dict(zip(STUDY_KEYS, key))
        row.update(
            n_trials=len(study),
            n_infeasible=int((study["status"] == "infeasible").sum()),
            n_reached=len(reached),
            step_budget=int(study["step_budget"].iloc[0]),
            target_metric=study["target_metric"].iloc[0],
            target_value=float(study["target_value"].iloc[0]),
            best_val_metric=float(np.nanmin(feasible["best_val_metric"])) if len(feasible) and study["target_direction"].iloc[0] == "minimize"
            else float(np.nanmax(feasible["best_val_metric"])) if len(feasible) else math.nan,
        )
        if len(reached):
            best = reached.sort_values(["steps_to_result", "trial_id"]).iloc[0]
            row.update(
                steps_to_result=float(best["steps_to_result"]),
                best_trial=int(best["trial_id"]),
                learning_rate=float(best["learning_rate"]),
                momentum=float(best["momentum"]),
                effective_learning_rate=float(best["effective_learning_rate"]),
                decay_steps=int(best["decay_steps"]),
                end_factor=float(best["end_factor"]),
                label_smoothing=float(best["label_smoothing"]),
            )
        else:
            row.update(steps_to_result=math.nan, best_trial=-1)
        rows.append(row)
    columns = [
        *STUDY_KEYS, "steps_to_result", "best_trial", "learning_rate", "momentum", "effective_learning_rate",
        "decay_steps", "end_factor", "label_smoothing", "n_trials", "n_infeasible", "n_reached",
        "best_val_metric", "step_budget", "target_metric", "target_value",
    ]
    return pd.DataFrame(rows).reindex(columns=columns)


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
            (curves["workload"] == row["workload"]) & (curves["optimizer"] == row["optimizer"])
            & (curves["batch_size"] == row["batch_size"]) & (curves["trial_id"] == row["best_trial"])
        ].sort_values("step")
        interpolated.append(trial_steps_interpolated(curve, row["target_metric"], row["target_value"]))
        before = curve["step"][curve["step"] < row["steps_to_result"]]
        interval.append(float(row["steps_to_result"] - before.iloc[-1]) if len(before) else 0.0)
    best["steps_interpolated"] = interpolated
    best["eval_interval"] = interval
    return best
