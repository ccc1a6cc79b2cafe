"""The compiled engine in float64 against the independent NumPy reference (numpy_reference.py), step
by step: weights at every evaluation to 1e-10, the same curves, statuses and steps to result, for
every optimizer, with label smoothing and linear decay on, a trial that diverges by the loss limit
(its loss still finite) and one whose best error equals the goal exactly (which must not count)."""

import math

import numpy as np
import pytest

from batch_science.data.arrays import Arrays
from batch_science.models.registry import get_model
from batch_science.training.engine import Engine, host_batch_indices
from batch_science.trials import INFEASIBLE, NOT_REACHED, OPTIMIZERS, Target
from reference import numpy_reference as ref

pytestmark = pytest.mark.slow

CLASSES, BATCH, HIDDEN = 4, 8, [6]
DIVERGENCE_FACTOR = 2.0
TOLERANCE = 1e-10


def tiny_arrays(seed: int = 0) -> Arrays:
    """80 training and 20 validation examples of 5 features, labelled by a random linear teacher."""
    rng = np.random.default_rng(seed)
    teacher = rng.normal(size=(5, CLASSES))
    x = rng.normal(size=(100, 5))
    y = (x @ teacher + 0.5 * rng.normal(size=(100, CLASSES))).argmax(1).astype(np.int32)
    return Arrays(x[:80], y[:80], x[80:], y[80:], CLASSES)


def trial(trial_id, learning_rate, momentum, label_smoothing, decay_steps=7, end_factor=0.2, budget=12, eval_every=3):
    return dict(
        trial_id=trial_id,
        learning_rate=learning_rate,
        momentum=momentum,
        decay_steps=decay_steps,
        end_factor=end_factor,
        label_smoothing=label_smoothing,
        seed=100 + trial_id,
        step_budget=budget,
        eval_every=eval_every,
    )


# Trial 0 sets the goal (its best error, met exactly), trial 1 learns fast, trial 2 diverges by the
# loss limit, trial 3 decays to the end of its schedule well before its budget.
TRIALS = [trial(0, 0.05, 0.5, 0.1), trial(1, 1.0, 0.8, 0.2), trial(2, 6.0, 0.9, 0.0), trial(3, 0.5, 0.5, 0.1, 3, 0.05)]
# Adam's steps are about its learning rate per weight whatever the gradient's size: its own rates
# for the same four roles, and its own metaparameters.
ADAM_RATES = {0: 0.02, 1: 0.2, 2: 6.0, 3: 0.1}
ADAM = dict(beta1=0.8, beta2=0.95, epsilon=1e-3)


def for_optimizer(trial: dict, optimizer: str) -> dict:
    """The trial as `optimizer` trains it: momentum 0 for sgd and adam, adam's rate and betas."""
    if optimizer == "adam":
        return dict(trial, momentum=0.0, learning_rate=ADAM_RATES[trial["trial_id"]], **ADAM)
    return dict(trial, momentum=0.0) if optimizer == "sgd" else trial


def reference_run(arrays, model, optimizer, trials, goal, stop_at_target=True):
    data = (arrays.x_train, arrays.y_train, arrays.x_validation, arrays.y_validation, CLASSES)
    return [
        ref.train(
            t,
            optimizer,
            model.init(t["seed"], arrays.x_train.shape[1:], CLASSES),
            lambda step, seed=t["seed"]: host_batch_indices([seed], [step], BATCH, len(arrays.x_train))[0],
            data,
            goal,
            DIVERGENCE_FACTOR,
            stop_at_target,
        )
        for t in trials
    ]


@pytest.fixture(scope="module")
def arrays():
    return tiny_arrays()


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_engine_matches_the_reference_step_by_step(arrays, optimizer):
    model = get_model({"name": "mlp", "hidden": HIDDEN})
    trials = [for_optimizer(t, optimizer) for t in TRIALS]
    # The goal is trial 0's best validation error over its whole budget: met exactly, never beaten.
    (setter,) = reference_run(arrays, model, optimizer, trials[:1], ("val_error", -1.0, "minimize"), False)
    goal_value = min(row["val_error"] for row in setter.curve)
    expected = reference_run(arrays, model, optimizer, trials, ("val_error", goal_value, "minimize"))
    # The cases this test is about happen in the reference itself.
    assert expected[0].status == NOT_REACHED and goal_value in [row["val_error"] for row in expected[0].curve]
    assert expected[2].status == INFEASIBLE and math.isfinite(expected[2].diverged_at_loss)
    assert expected[1].status == "reached", "a trial should reach the goal strictly"

    engine = Engine(model, arrays, optimizer, batch_size=BATCH, precision="float64")
    snapshots = []
    outcomes = engine.run(
        trials,
        Target("error", goal_value),
        divergence_factor=DIVERGENCE_FACTOR,
        group_size=len(trials),
        on_interval=lambda in_flight: snapshots.extend(in_flight()),
    )
    compared = set()
    for state in snapshots:
        index = state.outcome.trial["trial_id"]
        for w, r in zip(state.weights, expected[index].weights[state.step]):
            np.testing.assert_allclose(w, r, rtol=0, atol=TOLERANCE, err_msg=f"trial {index} step {state.step}")
        compared.add((index, state.step))
    assert {(0, s) for s in (3, 6, 9)} <= compared, "weights compared at every evaluation in flight"
    for index, (outcome, reference) in enumerate(zip(outcomes, expected)):
        assert (outcome.status, outcome.final_step) == (reference.status, reference.curve[-1]["step"]), index
        np.testing.assert_equal(outcome.steps_to_result, reference.steps_to_result)
        assert (outcome.best_metric, outcome.best_step) == (reference.best_metric, reference.best_step), index
        assert_same_curve(outcome.curve, reference.curve, index)


def assert_same_curve(got_curve, want_curve, label):
    """The same evaluated steps, and every metric within TOLERANCE (NaN where the reference has NaN:
    the step-0 training loss, or an interval whose first step diverged)."""
    assert [row["step"] for row in got_curve] == [row["step"] for row in want_curve], label
    for got, want in zip(got_curve, want_curve):
        for key in ("val_cross_entropy", "val_error", "train_cross_entropy"):
            where = (label, want["step"], key)
            if math.isnan(want[key]):
                assert math.isnan(got[key]), where
            else:
                assert got[key] == pytest.approx(want[key], rel=0, abs=TOLERANCE), where


def test_validation_error_is_the_exact_fraction_of_wrong_predictions():
    """k wrong of 7 is k / 7 correctly rounded, never an ulp below: an error equal to the goal must not meet it
    (a constant divisor compiled as multiplication by its reciprocal gave 0.7142857142857142 for 5 of 7)."""
    model = get_model({"name": "mlp", "hidden": HIDDEN})
    x = np.zeros((7, 5))
    labels = np.zeros((8, 7), np.int32)  # row k: 7 - k zeros, then k ones
    for k in range(8):
        labels[k, 7 - k :] = 1
    for k in range(8):
        arrays = Arrays(x, labels[k], x, labels[k], CLASSES)
        engine = Engine(model, arrays, "sgd", batch_size=BATCH, precision="float64")
        # Zero weights: every logit ties, the prediction is class 0, so the k ones are wrong.
        zeros = [np.zeros((1, *w.shape)) for w in model.init(0, (5,), CLASSES)]
        val_ce, val_error = (float(t.numpy()[0]) for t in engine.evaluate(zeros))
        assert val_error == k / 7, k
        assert not Target("error", k / 7).met(val_error)
        assert val_ce == pytest.approx(math.log(CLASSES), rel=1e-15)
