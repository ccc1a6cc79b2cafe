"""A Keras model by import path in the engine: the native MLP's curves in float64, per-trial seeds,
batch norm with population statistics, dropout keyed by trial and step."""

from pathlib import Path

import numpy as np
import pytest

from batch_science.models.keras_model import LOOP_MAX_TRIALS, KerasModel
from batch_science.models.registry import get_model
from batch_science.models.trial_axis import Mlp
from batch_science.training.engine import Engine
from batch_science.trials import Target
from conftest import constant_rate_trials

FACTORIES = str(Path(__file__).parent)  # keras_factories.py, found as a config's folder would be
TARGET = Target("error", 0.5)


@pytest.fixture(scope="module")
def arrays(mnist1d_data_dir):
    from batch_science.data.load import load

    return load({"name": "mnist1d"}, mnist1d_data_dir)


class KerasMlpFromNativeWeights(KerasModel):
    """The Keras MLP started from the native Mlp's initial weights (the same layout: kernel, bias per layer)."""

    def init(self, seed, input_shape, num_classes):
        super().init(seed, input_shape, num_classes)
        return Mlp((32, 32)).init(seed, input_shape, num_classes)


def curves(outcomes):
    return [
        [(p["step"], p["train_cross_entropy"], p["val_cross_entropy"], p["val_error"]) for p in o.curve]
        for o in outcomes
    ]


@pytest.mark.slow
def test_keras_mlp_from_the_native_weights_trains_to_the_native_float64_curves(arrays):
    keras_mlp = KerasMlpFromNativeWeights("keras_factories:mlp", {"hidden": (32, 32)}, FACTORIES)
    trials = constant_rate_trials([0.01, 0.1, 0.5], budget=60, eval_every=20)
    native = Engine(Mlp((32, 32)), arrays, "nesterov", 16, precision="float64").run(trials, TARGET, group_size=2)
    keras_engine = Engine(keras_mlp, arrays, "nesterov", 16, precision="float64")
    assert keras_engine.max_trials_per_graph is None, "dense layers vectorise: no limit of their own"
    keras = keras_engine.run(trials, TARGET, group_size=2)
    keras_alone = keras_engine.run(trials, TARGET, group_size=1)  # a graph of one trial, too
    assert keras_mlp.vectorizes, "dense layers vectorise: trials share the graph along the trial axis"
    assert [o.status for o in keras] == [o.status for o in native]
    np.testing.assert_array_equal(np.array(curves(keras), float), np.array(curves(native), float))
    np.testing.assert_allclose(np.array(curves(keras_alone), float), np.array(curves(native), float), rtol=1e-13)


@pytest.mark.parametrize(
    "model, message",
    [
        ({"keras": "no_such_module:mlp"}, "model.keras: 'no_such_module:mlp': module 'no_such_module' not found in"),
        ({"keras": "keras_factories:no_such"}, "model.keras: 'keras_factories:no_such': module 'keras_factories' ("),
        (
            {"keras": "keras_factories:raises"},
            "model.keras: 'keras_factories:raises' raised RuntimeError: the factory's",
        ),
        (
            {"keras": "keras_factories:not_a_model"},
            "model.keras: 'keras_factories:not_a_model' returned str, not a keras",
        ),
        (
            {"keras": "keras_factories:mlp", "classes": 3},
            "model.keras: 'keras_factories:mlp': the model's output has shape (3,)",
        ),
        (
            {"keras": "keras_factories:subclassed", "classes": 4},
            "the model's output has shape (4,) per example, the dataset has 10",
        ),
        (
            {"keras": "keras_factories:mlp", "depth": 3},
            "raised TypeError: mlp() got an unexpected keyword argument 'depth'",
        ),
        ({"keras": "keras_factories:mlp", "name": "mlp"}, "model: give name (a registered model) or keras"),
        ({"keras": "keras_factories"}, "model.keras: 'keras_factories' does not match"),
    ],
)
def test_a_bad_keras_model_is_one_line_naming_the_key_before_any_job(tiny_config, model, message):
    from batch_science.config import ConfigError
    from batch_science.tuning.study_config import check_study

    config = {**tiny_config, "config_dir": FACTORIES}
    config["workloads"] = {"mnist1d_mlp": {**tiny_config["workloads"]["mnist1d_mlp"], "model": model}}
    with pytest.raises(ConfigError) as error:
        check_study(config)
    assert str(error.value).startswith("config key workloads.mnist1d_mlp.model")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_sequential_subclassed_and_batch_norm_models_pass_the_check(tiny_config):
    from batch_science.tuning.study_config import check_study

    for factory in ("mlp", "subclassed", "batch_norm_dropout"):
        config = {**tiny_config, "config_dir": FACTORIES}
        config["workloads"] = {
            "w": {**tiny_config["workloads"]["mnist1d_mlp"], "model": {"keras": f"keras_factories:{factory}"}}
        }
        check_study(config)


def test_each_trial_is_initialised_by_keras_from_its_own_seed_leaving_global_generators_alone():
    model = get_model({"keras": "keras_factories:mlp", "hidden": [8]}, FACTORIES)
    np.random.seed(5)
    expected_next = np.random.random()
    np.random.seed(5)
    first, again, other = (model.init(seed, (40,), 10) for seed in (1, 1, 2))
    assert np.random.random() == expected_next, "building a trial's model must not move NumPy's global generator"
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    assert [w.shape for w in first] == [(40, 8), (8,), (8, 10), (10,)]
    # Keras's default initialisers: glorot-uniform kernels within their limit, zero biases.
    assert np.abs(first[0]).max() <= np.sqrt(6 / (40 + 8)) and not first[1].any()


def test_batch_norm_evaluates_with_the_population_statistics_of_the_given_examples():
    """Against NumPy: dense, normalise with the sample's mean and (biased) variance, ReLU, dense;
    dropout is off at evaluation."""
    import tensorflow as tf

    model = get_model({"keras": "keras_factories:batch_norm_dropout"}, FACTORIES)
    rng = np.random.default_rng(0)
    kernel, bias, gamma, beta = rng.normal(size=(40, 16)), rng.normal(size=16), rng.normal(size=16), rng.normal(size=16)
    read_kernel, read_bias = rng.normal(size=(16, 10)), rng.normal(size=10)
    moving_mean, moving_variance = rng.normal(size=16), rng.uniform(1, 2, size=16)  # must not be used
    weights = [kernel, bias, gamma, beta, read_kernel, read_bias, moving_mean, moving_variance]
    model.init(0, (40,), 10)
    assert [w.shape for w in model.init(0, (40,), 10)] == [w.shape for w in weights]
    sample, x = rng.normal(size=(64, 40)), rng.normal(size=(5, 40))
    stacked = [tf.constant(np.stack([w, 2 * w])) for w in weights]  # two trials, two sets of weights
    statistics = model.batch_norm_statistics(stacked, tf.constant(sample))
    logits = model.apply(stacked, tf.constant(x), shared=True, statistics=statistics).numpy()
    for trial, scale in enumerate((1, 2)):
        w = [scale * v for v in weights]
        hidden = sample @ w[0] + w[1]
        mean, variance = hidden.mean(axis=0), hidden.var(axis=0)
        normalised = ((x @ w[0] + w[1]) - mean) / np.sqrt(variance + 1e-3) * w[2] + w[3]  # Keras's epsilon
        np.testing.assert_allclose(logits[trial], np.maximum(normalised, 0) @ w[4] + w[5], rtol=1e-10)


def test_dropout_masks_follow_the_trial_seed_and_step_only():
    import tensorflow as tf

    model = get_model({"keras": "keras_factories:batch_norm_dropout"}, FACTORIES)
    weights = [tf.constant(np.stack([w, w, w])) for w in model.init(0, (40,), 10)]
    x = tf.constant(np.repeat(np.random.default_rng(1).normal(size=(1, 8, 40)), 3, axis=0))  # one batch, every slot

    def logits(seeds, steps):
        return model.apply(weights, x, shared=False, seeds=tf.constant(seeds), steps=tf.constant(steps)).numpy()

    reference = logits([7, 7, 8], [3, 4, 3])
    # The same (seed, step) pairs in other slots: the same masks, whichever slot holds them.
    np.testing.assert_array_equal(logits([8, 7, 7], [3, 4, 3]), reference[[2, 1, 0]])
    assert not np.allclose(reference[0], reference[1]), "another step, another mask"
    assert not np.allclose(reference[0], reference[2]), "another trial, another mask"
    np.testing.assert_array_equal(logits([7, 7, 8], [3, 4, 3]), reference)


@pytest.mark.slow
def test_a_keras_model_with_batch_norm_and_dropout_trains_the_same_trials_alone_or_together(arrays):
    model = get_model({"keras": "keras_factories:batch_norm_dropout"}, FACTORIES)
    trials = constant_rate_trials([0.01, 0.1, 0.3], budget=40, eval_every=20)
    engine = Engine(model, arrays, "momentum", 16, precision="float64")
    assert engine.max_trials_per_graph == LOOP_MAX_TRIALS, "dropout does not vectorise: a loop of a few trials"
    alone = engine.run(trials, TARGET, group_size=1)
    together = engine.run(trials[::-1], TARGET, group_size=3)[::-1]
    assert model.vectorizes is False and engine.stats["graph_sizes"] == [1, 3]
    # Equal up to the last bit or two of the summed training loss (XLA's order of a graph's reductions).
    np.testing.assert_allclose(np.array(curves(together), float), np.array(curves(alone), float), rtol=1e-13)
