"""The trial contract: the goal comparison at its boundary in both directions, and observe()'s
bookkeeping, checked against the definitions written out here."""

import math

import numpy as np
import pytest

from batch_science.trials import (
    INFEASIBLE,
    NOT_REACHED,
    PRUNED,
    REACHED,
    Target,
    TrialOutcome,
    observe,
    prune,
    strictly_better,
)


@pytest.mark.parametrize(
    "direction, value, met",
    [("minimize", 0.39, True), ("minimize", 0.40, False), ("minimize", 0.41, False),
     ("maximize", 0.41, True), ("maximize", 0.40, False), ("maximize", 0.39, False)],
)  # fmt: skip
def test_a_goal_is_met_only_strictly_beyond_it(direction, value, met):
    target = Target("error", 0.40, direction)
    assert target.met(value) is met
    assert bool(target.met(np.array([value]))[0]) is met  # arrays, as the analysis compares them


def test_nan_is_never_better_and_the_comparison_works_on_tensors():
    assert not Target("error", 0.4).met(math.nan) and not Target("error", 0.4, "maximize").met(math.nan)
    tf = pytest.importorskip("tensorflow")
    values = tf.constant([0.3, 0.4, 0.5], tf.float64)
    assert strictly_better(values, tf.constant(0.4, tf.float64), tf.constant(-1.0, tf.float64)).numpy().tolist() == [
        False,
        False,
        True,
    ]


def test_best_index_is_the_first_best_finite_value():
    assert Target("error", 0.5).best_index([0.9, np.nan, 0.2, 0.2, 0.4]) == 2
    assert Target("error", 0.5, "maximize").best_index([0.1, 0.7, np.inf * 0, 0.7]) == 1
    assert Target("error", 0.5).best_index([np.nan, np.nan]) is None


def test_unknown_direction_or_metric_is_refused():
    with pytest.raises(ValueError, match="direction 'down'"):
        Target("error", 0.5, "down")
    with pytest.raises(ValueError, match="metric 'accuracy'"):
        Target("accuracy", 0.5)


def evaluations(outcome, target, points, stop_at_target=True, prune_at=math.inf):
    """Feed (step, val_error, alive) points to observe(); return the step at which it finished."""
    for step, error, alive in points:
        metrics = {"train_cross_entropy": 1.0, "val_cross_entropy": 1.0, "val_error": error}
        if observe(outcome, target, step, metrics, alive, stop_at_target, prune_at):
            return step
    return None


def reference_outcome(points, goal, sign, budget):
    """From the definitions: steps to result = the first evaluated step strictly better than the goal;
    best = the best finite value while feasible, the earliest on ties; infeasible once not alive."""
    steps_to_result, best, best_step = math.nan, math.nan, 0
    for step, error, alive in points:
        if not alive:
            return INFEASIBLE, math.nan, best, best_step
        if math.isnan(steps_to_result) and sign * error < sign * goal:
            steps_to_result = float(step)
        if math.isfinite(error) and (math.isnan(best) or sign * error < sign * best):
            best, best_step = error, step
    return (NOT_REACHED if math.isnan(steps_to_result) else REACHED), steps_to_result, best, best_step


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_observe_agrees_with_the_definitions(direction):
    sign = 1.0 if direction == "minimize" else -1.0
    rng = np.random.default_rng(3)
    for _ in range(200):
        budget = 10 * int(rng.integers(1, 8))
        points = [
            (step, float(rng.choice([0.3, 0.4, 0.5, np.nan])), bool(rng.random() > 0.05))
            for step in range(0, budget + 1, 10)
        ]
        target = Target("error", 0.4, direction)
        outcome = TrialOutcome({"step_budget": budget})
        finished_at = evaluations(outcome, target, points, stop_at_target=False)
        status, steps, best, best_step = reference_outcome(
            points[: points.index(next(p for p in points if p[0] == finished_at)) + 1], 0.4, sign, budget
        )
        assert (outcome.status, outcome.best_step) == (status, best_step)
        assert outcome.steps_to_result == pytest.approx(steps, nan_ok=True)
        assert outcome.best_metric == pytest.approx(best, nan_ok=True)


def test_a_trial_stops_at_the_target_its_budget_or_divergence():
    target = Target("error", 0.4)
    at_goal = TrialOutcome({"step_budget": 100})
    assert evaluations(at_goal, target, [(0, 0.9, True), (10, 0.40, True), (20, 0.39, True), (30, 0.1, True)]) == 20
    assert (at_goal.status, at_goal.steps_to_result, at_goal.final_step, len(at_goal.curve)) == (REACHED, 20.0, 20, 3)
    budget = TrialOutcome({"step_budget": 20})
    assert evaluations(budget, target, [(0, 0.9, True), (10, 0.8, True), (20, 0.7, True)]) == 20
    assert budget.status == NOT_REACHED and budget.best_metric == pytest.approx(0.7)
    diverged = TrialOutcome({"step_budget": 100})
    # Trained on past the goal (stop_at_target off), then diverged: infeasible, the goal forgotten.
    assert (
        evaluations(diverged, target, [(0, 0.9, True), (10, 0.3, True), (20, 0.9, False)], stop_at_target=False) == 20
    )
    assert diverged.status == INFEASIBLE and math.isnan(diverged.steps_to_result) and diverged.best_step == 10


def test_a_non_finite_validation_loss_is_infeasible():
    outcome = TrialOutcome({"step_budget": 100})
    metrics = {"train_cross_entropy": 1.0, "val_cross_entropy": math.inf, "val_error": 0.1}
    assert observe(outcome, Target("error", 0.4), 0, metrics, True)
    assert outcome.status == INFEASIBLE


@pytest.mark.parametrize(
    "errors, prune_at, status, final_step",
    [
        ([0.9, 0.8, 0.7], 10, PRUNED, 10),  # at the best step without the goal: it can only be later
        ([0.9, 0.8, 0.3], 20, REACHED, 20),  # meets the goal exactly at the best step: kept (ties by id)
        ([0.9, 0.8, 0.7], 20, PRUNED, 20),
        ([0.9, 0.8, 0.7, 0.6], 30, NOT_REACHED, 30),  # at its budget: complete, not pruned
        ([0.9, 0.3], 0, PRUNED, 0),  # another trial met the goal at step 0
    ],
)
def test_a_trial_is_pruned_once_at_the_best_step_without_the_goal(errors, prune_at, status, final_step):
    target = Target("error", 0.4)
    outcome = TrialOutcome({"step_budget": 30})
    history = [(10 * k, error, True) for k, error in enumerate(errors)]
    assert evaluations(outcome, target, history, prune_at=prune_at) == final_step
    assert (outcome.status, outcome.final_step) == (status, final_step)


def test_prune_stops_a_running_trial_at_or_past_the_best_step_only():
    target = Target("error", 0.4)
    outcome = TrialOutcome({"step_budget": 100})
    assert not prune(outcome, 0)  # not yet evaluated
    evaluations(outcome, target, [(0, 0.9, True), (10, 0.8, True)])
    assert not prune(outcome, 11) and outcome.status == NOT_REACHED
    assert prune(outcome, 10) and outcome.status == PRUNED and len(outcome.curve) == 2
    reached = TrialOutcome({"step_budget": 100})
    evaluations(reached, target, [(0, 0.9, True), (10, 0.3, True)], stop_at_target=False)
    assert not prune(reached, 0) and reached.status == REACHED
