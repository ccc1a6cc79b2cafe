"""Steps to result: the first evaluation strictly past the target; the best trial per study."""

import math

import numpy as np
import pandas as pd
import pytest

from batch_science.analysis.steps import best_trials, trial_steps_interpolated, trial_steps_to_result


def curve(steps, errors):
    return pd.DataFrame({"step": steps, "val_error": errors, "val_cross_entropy": np.nan})


def test_first_evaluation_strictly_below_target():
    c = curve([0, 10, 20, 30, 40], [0.9, 0.5, 0.4, 0.3, 0.2])
    assert trial_steps_to_result(c, "error", 0.4) == 30  # 0.4 is not below 0.4
    assert trial_steps_to_result(c, "error", 0.41) == 20
    assert math.isnan(trial_steps_to_result(c, "error", 0.1))


def test_maximize_direction():
    c = curve([0, 10, 20], [0.1, 0.5, 0.7])
    assert trial_steps_to_result(c, "error", 0.6, "maximize") == 20


def test_interpolated_crossing_lies_inside_the_last_interval():
    c = curve([0, 10, 20], [0.9, 0.5, 0.3])
    assert trial_steps_interpolated(c, "error", 0.4) == 15
    assert trial_steps_to_result(c, "error", 0.4) - trial_steps_interpolated(c, "error", 0.4) <= 10


def trial(trial_id, steps, status="reached", lr=0.1):
    return {
        "workload": "w",
        "optimizer": "sgd",
        "batch_size": 8,
        "trial_id": trial_id,
        "status": status,
        "steps_to_result": steps,
        "learning_rate": lr,
        "momentum": 0.0,
        "effective_learning_rate": lr,
        "decay_steps": 0,
        "end_factor": 1.0,
        "label_smoothing": 0.0,
        "best_val_metric": 0.3,
        "step_budget": 100,
        "target_metric": "error",
        "target_value": 0.4,
        "target_direction": "minimize",
    }


def test_best_trial_is_fewest_steps_ties_to_lowest_id_infeasible_never():
    trials = pd.DataFrame(
        [
            trial(0, 50.0),
            trial(1, 30.0, lr=0.2),
            trial(2, 30.0, lr=0.3),
            trial(3, 10.0, status="infeasible"),
            trial(4, math.nan, "not_reached"),
        ]
    )
    best = best_trials(trials).iloc[0]
    assert best["steps_to_result"] == 30 and best["best_trial"] == 1 and best["learning_rate"] == 0.2
    # n_trials counts the feasible (COMPLETE) trials, as the paper does; the infeasible one apart.
    assert (best["n_trials"], best["n_infeasible"], best["n_reached"]) == (4, 1, 3)


def test_study_where_no_trial_reaches_has_no_point():
    best = best_trials(pd.DataFrame([trial(0, math.nan, "not_reached"), trial(1, math.nan, "infeasible")])).iloc[0]
    assert math.isnan(best["steps_to_result"]) and best["best_trial"] == -1


def reference_crossing(steps, values, target, sign):
    """Float64 reference from the definition: the first evaluation strictly better than the target
    (sign +1 minimize, -1 maximize), the crossing linearly interpolated from the one before it."""
    for i, value in enumerate(values):
        if sign * value < sign * target:
            if i == 0:
                return float(steps[0])
            before, after = values[i - 1], value
            return steps[i - 1] + (before - target) / (before - after) * (steps[i] - steps[i - 1])
    return math.nan


def test_a_maximize_goal_is_interpolated_in_its_own_direction():
    from batch_science.analysis.steps import with_interpolated_steps

    steps, values = [0, 100, 200, 300], [0.10, 0.30, 0.45, 0.75]  # a metric to maximize, goal 0.5
    row = {**trial(0, 300.0), "best_val_metric": 0.75, "target_value": 0.5, "target_direction": "maximize"}
    best = best_trials(pd.DataFrame([row]))
    curves = pd.DataFrame(
        {"workload": "w", "optimizer": "sgd", "batch_size": 8, "trial_id": 0, "step": steps, "val_error": values}
    )
    result = with_interpolated_steps(best, curves).iloc[0]
    assert (
        result["steps_interpolated"]
        == pytest.approx(reference_crossing(steps, values, 0.5, -1.0))
        == pytest.approx(200 + 100 / 6)
    )
    assert result["eval_interval"] == 100
    # ... and a minimize goal in its direction, on the mirrored curve
    mirrored = {**row, "best_val_metric": 0.25, "target_direction": "minimize"}
    curves["val_error"] = [1 - v for v in values]
    result = with_interpolated_steps(best_trials(pd.DataFrame([mirrored])), curves).iloc[0]
    assert result["steps_interpolated"] == pytest.approx(reference_crossing(steps, [1 - v for v in values], 0.5, 1.0))
