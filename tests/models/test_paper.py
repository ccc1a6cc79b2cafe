"""The paper's models: registered by name, the expected parameter counts, and a few steps of training lower the loss."""

import numpy as np
import pytest

from batch_science.models.registry import MODELS, get_model
from conftest import constant_rate_trials

# Full-size parameter counts. External references: Simple CNN as the TensorFlow MNIST tutorial
# model (3,274,634), ResNet-50 and VGG-11 as torchvision's resnet50 / vgg11 (25,557,032 and
# 132,863,336). ResNet-8 and the language models are summed layer by layer here.
RESNET_8 = (
    3 * 3 * 3 * 16
    + 2 * 16  # stem conv + batch norm
    + 2 * (3 * 3 * 16 * 16 + 2 * 16)  # stage 1: two 3x3 convs
    + (3 * 3 * 16 * 32 + 3 * 3 * 32 * 32 + 4 * 32)
    + (16 * 32 + 2 * 32)  # stage 2 + projection
    + (3 * 3 * 32 * 64 + 3 * 3 * 64 * 64 + 4 * 64)
    + (32 * 64 + 2 * 64)  # stage 3 + projection
    + 64 * 10
    + 10  # read-out
)
D, F, V = 512, 2048, 32768
TRANSFORMER_BASE = V * D + 6 * (4 * (D * D + D) + 2 * 2 * D + (D * F + F) + (F * D + D)) + 2 * D
LSTM = V * 512 + 4 * 1024 * (512 + 1024 + 1) + 4 * 1024 * (1024 + 1024 + 1) + 1024 * V + V

FULL_SIZE = [
    ({"name": "fully_connected", "depth": 1, "width": 1024}, (784,), 10, 784 * 1024 + 1024 + 1024 * 10 + 10),
    (
        {"name": "fully_connected", "depth": 3, "width": 64},
        (784,),
        10,
        784 * 64 + 64 + 2 * (64 * 64 + 64) + 64 * 10 + 10,
    ),
    ({"name": "simple_cnn"}, (28, 28, 1), 10, 3_274_634),
    ({"name": "resnet_8"}, (32, 32, 3), 10, RESNET_8),
    ({"name": "resnet_50"}, (224, 224, 3), 1000, 25_557_032),
    ({"name": "vgg_11"}, (224, 224, 3), 1000, 132_863_336),
    ({"name": "transformer_lm"}, (128,), V, TRANSFORMER_BASE),
    ({"name": "lstm_lm"}, (128,), V, LSTM),
]


@pytest.mark.parametrize(
    "spec, input_shape, num_classes, expected", FULL_SIZE, ids=lambda v: v["name"] if isinstance(v, dict) else None
)
def test_full_size_parameter_count(spec, input_shape, num_classes, expected):
    model = get_model(spec)
    if hasattr(model, "parameter_count"):
        assert model.parameter_count(input_shape, num_classes) == expected
    else:
        assert sum(w.size for w in model.init(0, input_shape, num_classes)) == expected
    assert model.flops_per_example(input_shape, num_classes) > 2 * expected * 0.5 or spec["name"] in (
        "vgg_11",
        "transformer_lm",
        "lstm_lm",
    )


def test_every_paper_model_is_registered_and_big_ones_train_one_trial_per_graph():
    for name in ("fully_connected", "simple_cnn", "resnet_8", "resnet_50", "vgg_11", "transformer_lm", "lstm_lm"):
        assert name in MODELS
    for name in ("resnet_50", "vgg_11", "transformer_lm", "lstm_lm"):
        assert getattr(get_model({"name": name}), "max_trials_per_graph", None) == 1
    with pytest.raises(ValueError, match="model 'transformer_lm': bad size knob"):
        get_model({"name": "transformer_lm", "size": "huge"})


# Small sizes for training: (spec, input shape, classes, trials in one graph, learning rate).
SMALL = [
    ({"name": "fully_connected", "depth": 2, "width": 16}, (6, 6, 1), 5, 2, 0.05),
    ({"name": "simple_cnn", "filters": [4, 8], "dense": 16}, (12, 12, 1), 5, 2, 0.05),
    ({"name": "resnet_8", "widths": [4, 8, 8]}, (8, 8, 3), 5, 2, 0.05),
    ({"name": "resnet_8", "widths": [4, 8, 8], "ghost_batch_size": 4}, (8, 8, 3), 5, 2, 0.05),
    ({"name": "resnet_50", "width": 2, "blocks": [1, 1, 1, 1]}, (16, 16, 3), 5, 1, 0.05),
    ({"name": "vgg_11", "widths": [4, 4, 8, 8, 8], "dense": 16}, (16, 16, 3), 5, 1, 0.02),
    ({"name": "transformer_lm", "layers": 1, "d_model": 16, "heads": 2, "d_ff": 32}, (8,), 11, 1, 0.05),
    ({"name": "lstm_lm", "layers": 1, "hidden": 16, "embedding": 8}, (8,), 11, 1, 0.5),
]


def small_batch(input_shape, num_classes, rng, batch=16):
    if len(input_shape) == 1 and input_shape[0] == 8:  # language model: next token is (token + 1) mod vocab
        x = rng.integers(0, num_classes, size=(batch, *input_shape))
        return x.astype(np.float32), (x + 1) % num_classes
    x = rng.normal(size=(batch, *input_shape)).astype(np.float32)
    return x, rng.integers(0, num_classes, size=batch)


@pytest.mark.parametrize(
    "spec, input_shape, num_classes, n_trials, learning_rate",
    SMALL,
    ids=lambda v: v["name"] if isinstance(v, dict) else None,
)
@pytest.mark.slow
def test_few_steps_of_sgd_lower_every_trials_loss(spec, input_shape, num_classes, n_trials, learning_rate):
    import tensorflow as tf

    model = get_model(spec)
    rng = np.random.default_rng(0)
    x, y = small_batch(input_shape, num_classes, rng)
    per_trial = [model.init(seed, input_shape, num_classes) for seed in range(n_trials)]
    if hasattr(model, "parameter_count"):
        assert sum(w.size for w in per_trial[0]) == model.parameter_count(input_shape, num_classes)
    weights = [tf.Variable(np.stack(ws).astype(np.float32)) for ws in zip(*per_trial)]
    x_trials = tf.constant(np.stack([x] * n_trials))
    labels = tf.constant(y, tf.int32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = model.apply(weights, x_trials, shared=False)
            broadcast = tf.broadcast_to(labels, logits.shape[1:-1])
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(tf.broadcast_to(broadcast, logits.shape[:-1]), logits),
                axis=list(range(1, len(logits.shape) - 1)),
            )
            total = tf.reduce_sum(loss)
        gradients = tape.gradient(total, weights)
        missing = [w.shape for w, g in zip(weights, gradients) if g is None]
        assert not missing, f"weights outside the graph: {missing}"
        for w, g in zip(weights, gradients):
            w.assign_sub(learning_rate * g)
        return loss

    losses = np.array([step().numpy() for _ in range(6)])
    assert losses.shape == (6, n_trials) and np.isfinite(losses).all()
    assert (losses[-1] < losses[0]).all(), losses
    shared_logits = model.apply([tf.constant(w.numpy()) for w in weights], tf.constant(x), shared=True)
    assert shared_logits.shape == (n_trials, *y.shape, num_classes)


@pytest.mark.slow
def test_simple_cnn_trains_in_the_engine(tmp_path):
    """The engine's own loop (compiled, several trials in one graph) accepts a paper model."""
    from batch_science.data.arrays import Arrays
    from batch_science.training.engine import Engine
    from batch_science.trials import Target

    rng = np.random.default_rng(1)
    templates = rng.normal(size=(3, 10, 10, 1))
    y = rng.integers(0, 3, size=240)
    x = (templates[y] + 0.5 * rng.normal(size=(240, 10, 10, 1))).astype(np.float32)
    arrays = Arrays(x[:200], y[:200].astype(np.int32), x[200:], y[200:].astype(np.int32), 3)
    engine = Engine(
        get_model({"name": "simple_cnn", "filters": [4, 8], "dense": 16}), arrays, "momentum", batch_size=16
    )
    trials = constant_rate_trials([0.01, 0.003], budget=30, eval_every=10, seed=7)
    outcomes = engine.run(trials, Target("error", 0.0), group_size=2)
    for outcome in outcomes:
        losses = [row["val_cross_entropy"] for row in outcome.curve]
        assert outcome.status == "not_reached" and losses[-1] < losses[0]


@pytest.mark.parametrize(
    "spec, input_shape",
    [
        ({"name": "simple_cnn", "filters": [3, 4], "dense": 8}, (8, 8, 1)),
        ({"name": "resnet_8", "widths": [2, 4, 4], "ghost_batch_size": 2}, (8, 8, 3)),
        ({"name": "transformer_lm", "layers": 1, "d_model": 8, "heads": 2, "d_ff": 8}, (5,)),
    ],
)
def test_trials_in_one_graph_equal_trials_alone(spec, input_shape):
    """Batch statistics and weights stay per trial: two trials together give what each gives alone."""
    import tensorflow as tf

    model = get_model(spec)
    rng = np.random.default_rng(3)
    x = (
        rng.integers(0, 7, size=(4, *input_shape)).astype(float)
        if len(input_shape) == 1
        else rng.normal(size=(4, *input_shape))
    )
    per_trial = [model.init(seed, input_shape, 7) for seed in (1, 2)]
    stacked = [tf.constant(np.stack(ws)) for ws in zip(*per_trial)]
    for shared, inputs in ((True, x), (False, np.stack([x, x[::-1]]))):
        together = model.apply(stacked, tf.constant(inputs), shared=shared).numpy()
        for t, weights in enumerate(per_trial):
            alone = model.apply(
                [tf.constant(w[None]) for w in weights],
                tf.constant(inputs if shared else inputs[t : t + 1]),
                shared=shared,
            ).numpy()[0]
            np.testing.assert_allclose(together[t], alone, rtol=1e-10, atol=1e-12)


def _batch_norm_reference(x, gamma, beta, mean=None, variance=None, upstream=None):
    """Batch norm over every axis but the channels, from its formula in float64: (output, mean,
    biased variance, gradient of sum(output * upstream) with respect to x)."""
    axes = tuple(range(x.ndim - 1))
    given = mean is not None
    mean = x.mean(axis=axes) if not given else mean
    variance = ((x - mean) ** 2).mean(axis=axes) if not given else variance
    scale = 1.0 / np.sqrt(variance + 1e-5)
    normalised = (x - mean) * scale
    output = normalised * gamma + beta
    if upstream is None:
        return output, mean, variance, None
    g = upstream * gamma
    if given:  # the statistics are constants
        return output, mean, variance, g * scale
    gradient = scale * (g - g.mean(axis=axes) - normalised * (g * normalised).mean(axis=axes))
    return output, mean, variance, gradient


def test_float32_batch_norm_matches_its_formula_in_training_measuring_and_with_given_statistics():
    """float32 image batches go through TensorFlow's fused op: its output, gradient and measured
    (biased) variance are checked against the formula in float64, as are the separate ops of float64."""
    import tensorflow as tf

    from batch_science.models.paper import _batch_norm, _normalised

    rng = np.random.default_rng(5)
    x = rng.normal(1.5, 2.0, size=(4, 3, 3, 2))  # 36 values per channel: the unbiased variance is 3% off
    gamma, beta, upstream = rng.normal(size=2), rng.normal(size=2), rng.normal(size=x.shape)
    given_mean, given_variance = rng.normal(size=2), rng.uniform(0.5, 2.0, size=2)
    for dtype, tolerance in ((np.float32, 2e-5), (np.float64, 1e-12)):
        tensors = [tf.constant(a.astype(dtype)) for a in (x, gamma, beta, upstream, given_mean, given_variance)]
        tx, tgamma, tbeta, tupstream, tmean, tvariance = tensors
        for statistics in (None, (tmean, tvariance)):
            with tf.GradientTape() as tape:
                tape.watch(tx)
                output = _batch_norm(tf, tx, tgamma, tbeta, None, training=True, statistics=statistics)
                total = tf.reduce_sum(output * tupstream)
            gradient = tape.gradient(total, tx)
            given = {} if statistics is None else {"mean": given_mean, "variance": given_variance}
            expected, mean, variance, expected_gradient = _batch_norm_reference(
                x, gamma, beta, upstream=upstream, **given
            )
            np.testing.assert_allclose(output.numpy(), expected, rtol=tolerance, atol=tolerance)
            np.testing.assert_allclose(gradient.numpy(), expected_gradient, rtol=tolerance, atol=10 * tolerance)
        measured_output, (measured_mean, measured_variance) = _normalised(tf, tx, tgamma, tbeta)
        expected, mean, variance, _ = _batch_norm_reference(x, gamma, beta)
        np.testing.assert_allclose(measured_output.numpy(), expected, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(measured_mean.numpy(), mean, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(measured_variance.numpy(), variance, rtol=tolerance)
