"""The update rules and the schedule against the paper's formulas, written out in float64 NumPy."""

import numpy as np
import pytest

from batch_science.training.optimizers import check_optimizer, learning_rate_at, update


def reference_trajectory(optimizer, gradients, learning_rates, momentum):
    """w_{t+1} from the paper's eq. (2)-(4): sgd w -= lr g; heavy ball v = m v + g, w -= lr v;
    Nesterov v = m v + g, w -= lr (g + m v)."""
    w, v = np.zeros_like(gradients[0]), np.zeros_like(gradients[0])
    for g, lr in zip(gradients, learning_rates):
        if optimizer == "sgd":
            w = w - lr * g
            continue
        v = momentum * v + g
        w = w - lr * (g + momentum * v if optimizer == "nesterov" else v)
    return w


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_update_follows_the_paper_formulas(optimizer):
    rng = np.random.default_rng(0)
    gradients = rng.normal(size=(6, 3, 2))
    rates = [0.1, 0.05, 0.05, 0.02, 0.3, 0.01]
    w, v = np.zeros((3, 2)), np.zeros((3, 2))
    for g, lr in zip(gradients, rates):
        w, v = update(optimizer, w, v, g, lr, 0.9)
    np.testing.assert_allclose(w, reference_trajectory(optimizer, gradients, rates, 0.9), rtol=1e-15, atol=0)
    if optimizer == "sgd":
        assert not v.any()  # sgd keeps no velocity


def test_update_works_on_tensors_and_broadcasts_per_trial_rates():
    tf = pytest.importorskip("tensorflow")
    w, v, g = (tf.constant(np.full((2, 3), x), tf.float64) for x in (1.0, 0.5, 2.0))
    rates, momenta = tf.constant([[0.1], [0.2]], tf.float64), tf.constant([[0.0], [0.5]], tf.float64)
    new_w, new_v = update("nesterov", w, v, g, rates, momenta)
    for trial, (lr, m) in enumerate([(0.1, 0.0), (0.2, 0.5)]):
        velocity = m * 0.5 + 2.0
        np.testing.assert_allclose(new_v.numpy()[trial], velocity)
        np.testing.assert_allclose(new_w.numpy()[trial], 1.0 - lr * (2.0 + m * velocity))


def reference_rate(step, learning_rate, decay_steps, end_factor):
    """Linear decay from learning_rate to learning_rate * end_factor over decay_steps, then constant."""
    if decay_steps == 0:
        return learning_rate
    return learning_rate * (1 - (1 - end_factor) * min(step, decay_steps) / decay_steps)


@pytest.mark.parametrize("step", [0, 1, 49, 50, 51, 200])
def test_schedule_decays_linearly_to_its_end_and_stays_there(step):
    assert learning_rate_at(step, 0.4, 50, 0.1) == pytest.approx(reference_rate(step, 0.4, 50, 0.1), rel=1e-15)
    assert learning_rate_at(step, 0.4, 0, 0.1) == 0.4  # no decay
    assert learning_rate_at(50, 0.4, 50, 0.1) == pytest.approx(0.04, rel=1e-15)  # the end factor exactly at decay_steps


def test_schedule_is_elementwise_over_trials():
    rates = learning_rate_at(10, np.array([0.1, 0.2, 0.3]), np.array([0.0, 20.0, 10.0]), np.array([0.5, 0.5, 0.0]))
    np.testing.assert_allclose(rates, [0.1, 0.15, 0.0], rtol=1e-15)


def test_unknown_optimizer_is_one_line():
    with pytest.raises(ValueError, match="optimizer 'adamw': unknown \\(known: sgd, momentum, nesterov\\)"):
        check_optimizer("adamw")
