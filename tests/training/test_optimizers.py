"""The update rules and the schedule against the paper's formulas and Adam's, written out in float64
NumPy, and Adam in the engine against keras.optimizers.Adam."""

import numpy as np
import pytest

from batch_science.training.optimizers import (
    STATE,
    check_optimizer,
    learning_rate_at,
    step_scalars,
    update,
    update_weights,
    zero_state,
)
from batch_science.trials import OPTIMIZERS

HYPER = {"learning_rate": 0.1, "momentum": 0.9, "decay_steps": 4, "end_factor": 0.2}
ADAM = {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-3}  # a large epsilon, so a misplaced one shows


def reference_trajectory(optimizer, gradients, learning_rates, momentum, beta1=0.0, beta2=0.0, epsilon=0.0):
    """w_{t+1} from the paper's eq. (2)-(4): sgd w -= lr g; heavy ball v = m v + g, w -= lr v;
    Nesterov v = m v + g, w -= lr (g + m v); and Adam (Kingma & Ba 2015, section 2, the form with
    epsilon outside the root that Keras uses): m = b1 m + (1 - b1) g, s = b2 s + (1 - b2) g^2,
    w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(s) + eps) at the t-th update."""
    w, v, m, s = (np.zeros_like(gradients[0]) for _ in range(4))
    for t, (g, lr) in enumerate(zip(gradients, learning_rates), start=1):
        if optimizer == "sgd":
            w = w - lr * g
        elif optimizer == "adam":
            m = beta1 * m + (1 - beta1) * g
            s = beta2 * s + (1 - beta2) * g**2
            w = w - lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(s) + epsilon)
        else:
            v = momentum * v + g
            w = w - lr * (g + momentum * v if optimizer == "nesterov" else v)
    return w, {"velocity": v, "first_moment": m, "second_moment": s}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_update_follows_the_formulas_with_the_decayed_rate(optimizer):
    rng = np.random.default_rng(0)
    gradients = rng.normal(size=(6, 3, 2))
    hyper = {**HYPER, **ADAM}
    w, state = np.zeros((3, 2)), zero_state(optimizer, [np.zeros((3, 2))], np.zeros_like)
    for step, g in enumerate(gradients):
        (w,), state = update_weights(optimizer, [w], state, [g], step_scalars(optimizer, hyper, step))
    rates = [0.1 * (1 - 0.8 * min(t, 4) / 4) for t in range(6)]  # 0.1 decayed to 0.02 over 4 steps
    expected_w, expected_state = reference_trajectory(optimizer, gradients, rates, 0.9, **ADAM)
    np.testing.assert_allclose(w, expected_w, rtol=1e-14, atol=0)
    assert set(state) == set(STATE[optimizer])
    for name, (value,) in state.items():
        np.testing.assert_allclose(value, expected_state[name], rtol=1e-14, atol=0)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_slot_that_does_not_train_keeps_weights_and_state_to_the_bit(optimizer):
    """The engine freezes a slot through its scalars: keep false and a zero gradient change nothing."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(2, 3))
    state = {name: [np.abs(rng.normal(size=(2, 3)))] for name in STATE[optimizer]}
    keep = np.array([False, True])[:, None]
    hyper = {key: np.full((2, 1), value) for key, value in {**HYPER, **ADAM}.items()}
    scalars = step_scalars(optimizer, hyper, np.full((2, 1), 3.0), keep)
    (new_w,), new_state = update_weights(optimizer, [w], state, [np.zeros((2, 3))], scalars)
    assert (new_w[0] == w[0]).all()
    for name in STATE[optimizer]:
        assert (new_state[name][0][0] == state[name][0][0]).all(), name
    if optimizer != "sgd":  # the slot that trains moves (momentum and Adam's moments decay)
        assert not (new_w[1] == w[1]).all()


def test_update_works_on_tensors_and_broadcasts_per_trial_rates():
    tf = pytest.importorskip("tensorflow")
    w, v, g = (tf.constant(np.full((2, 3), x), tf.float64) for x in (1.0, 0.5, 2.0))
    rates, momenta = tf.constant([[0.1], [0.2]], tf.float64), tf.constant([[0.0], [0.5]], tf.float64)
    new_w, new_state = update("nesterov", w, {"velocity": v}, g, {"learning_rate": rates, "momentum": momenta}, tf)
    for trial, (lr, m) in enumerate([(0.1, 0.0), (0.2, 0.5)]):
        velocity = m * 0.5 + 2.0
        np.testing.assert_allclose(new_state["velocity"].numpy()[trial], velocity)
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
    with pytest.raises(ValueError, match="optimizer 'adamw': unknown \\(known: sgd, momentum, nesterov, adam\\)"):
        check_optimizer("adamw")


@pytest.mark.slow
def test_adam_in_the_engine_is_keras_adam_in_float64(mnist1d_data_dir):
    """One trial, 12 compiled engine steps with linear decay over 8 of them, against
    keras.optimizers.Adam (PolynomialDecay, the same batches and gradients) on float64 variables:
    weights and both moment estimates. Keras keeps its learning rate and betas in float32, so the
    metaparameters are exact in binary (with 0.01, 0.8, 0.95 the two differ by ~1e-7 relative)."""
    import keras
    import tensorflow as tf

    from batch_science.data.load import load
    from batch_science.models.trial_axis import Mlp
    from batch_science.training.engine import Engine, host_batch_indices

    arrays = load({"name": "mnist1d"}, mnist1d_data_dir)
    engine = Engine(Mlp((16,)), arrays, "adam", 8, precision="float64")
    lr, end_factor, beta1, beta2, epsilon = 2**-7, 0.125, 0.75, 0.9375, 2**-13
    trial = {"learning_rate": lr, "momentum": 0.0, "decay_steps": 8, "end_factor": end_factor, "label_smoothing": 0.1}
    trial.update(beta1=beta1, beta2=beta2, epsilon=epsilon)
    seed, steps = 7, 12
    initial = engine.model.init(seed, engine.input_shape, engine.num_classes)

    hyper = {key: tf.constant([value], tf.float64) for key, value in trial.items()}
    hyper["seed"] = tf.constant([seed], tf.int64)
    weights = [tf.constant(w[None], tf.float64) for w in initial]
    state = zero_state("adam", weights, tf.zeros_like)
    n = tf.constant([steps], tf.int32)
    zeros = tf.zeros([1], tf.float64)
    weights, state, alive, _, _ = engine.compiled(engine.train_steps_graph)(
        weights, state, tf.constant([True]), tf.constant([1e9], tf.float64), hyper, tf.constant([0]), n, zeros, zeros
    )
    assert bool(alive.numpy()[0])

    schedule = keras.optimizers.schedules.PolynomialDecay(lr, 8, end_learning_rate=lr * end_factor, power=1.0)
    adam = keras.optimizers.Adam(schedule, beta_1=beta1, beta_2=beta2, epsilon=epsilon)
    variables = [keras.Variable(w[None], dtype="float64") for w in initial]
    for step in range(steps):
        index = host_batch_indices([seed], [step], 8, len(arrays.x_train))[0]
        x, y = tf.constant(arrays.x_train[index][None], tf.float64), tf.constant(arrays.y_train[index][None])
        with tf.GradientTape() as tape:
            values = [v.value for v in variables]
            tape.watch(values)
            loss = engine.loss(engine.model.apply(values, x, shared=False), y, tf.constant([0.1], tf.float64))[0]
        adam.apply_gradients(zip(tape.gradient(loss, values), variables))
    for ours, theirs in zip(weights, variables):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-15)
    for name, theirs in (("first_moment", adam._momentums), ("second_moment", adam._velocities)):
        for ours, reference in zip(state[name], theirs):
            np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-12, atol=1e-18, err_msg=name)
    assert np.abs(weights[0].numpy() - initial[0][None]).max() > 3 * lr  # it trained
