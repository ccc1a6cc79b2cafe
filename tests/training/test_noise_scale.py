"""Gradient noise scale: the unbiased estimators, their smoothing, the NQM's closed form, the comparison."""

import math

import numpy as np
import pandas as pd
import pytest

from batch_science.analysis.noise_scale import compare_with_fits, summary
from batch_science.training.noise_scale import ema, measure_nqm, unbiased_estimates
from batch_science.training.nqm import Quadratic


def test_estimators_are_unbiased_for_sampled_batch_means():
    rng = np.random.default_rng(0)
    dimension, small, big, repeats = 10, 4, 64, 4000
    gradient = rng.normal(0, 0.3, dimension)
    noise_sd = rng.uniform(0.5, 2.0, dimension)
    # Batch means of i.i.d. per-example gradients: noise variance Sigma / B per coordinate.
    mean_small = gradient + rng.standard_normal((repeats, dimension)) * noise_sd / math.sqrt(small)
    mean_big = gradient + rng.standard_normal((repeats, dimension)) * noise_sd / math.sqrt(big)
    g2, trace = unbiased_estimates((mean_small**2).sum(1), (mean_big**2).sum(1), small, big)
    for estimate, truth in ((g2, (gradient**2).sum()), (trace, (noise_sd**2).sum())):
        standard_error = estimate.std(ddof=1) / math.sqrt(repeats)
        assert abs(estimate.mean() - truth) < 4 * standard_error, (estimate.mean(), truth, standard_error)
    # The naive |G_big|^2 is biased upwards by tr(Sigma) / B_big; the estimator removes that.
    assert (mean_big**2).sum(1).mean() - (gradient**2).sum() > 10 * (g2.std(ddof=1) / math.sqrt(repeats))


def test_ema_is_bias_corrected_and_smooths():
    np.testing.assert_allclose(ema(np.full(20, 3.0), 0.9), 3.0)
    noisy = 1.0 + np.random.default_rng(1).standard_normal(2000)
    smoothed = ema(noisy, 0.95)
    assert smoothed[500:].std() < 0.3 * noisy.std()


SETTINGS = {
    "small_batch": 1,
    "big_batch": 64,
    "optimizer": "sgd",
    "learning_rate": 0.5,
    "momentum": 0.0,
    "steps": 200,
    "eval_every": 10,
    "ema_decay": 0.9,
}


def test_nqm_noise_scale_starts_at_closed_form_and_grows_as_the_gradient_shrinks():
    spec = {"dimension": 50, "spectrum_exponent": 1.0}
    curve = measure_nqm("nqm", spec, SETTINGS)
    h = Quadratic(50).curvature
    assert curve["b_simple"].iloc[0] == pytest.approx(h.sum() / (h**2).sum())  # E theta_0^2 = 1
    assert curve["b_simple"].iloc[-1] > 5 * curve["b_simple"].iloc[0]
    assert curve["b_noise"].iloc[0] == pytest.approx((h**2).sum() / (h**3).sum())
    assert list(curve["step"]) == list(range(0, 201, 10))


def test_comparison_puts_prediction_beside_fit_per_optimizer():
    curves = pd.DataFrame(
        {
            "workload": "w",
            "step": [0, 10, 20],
            "val_error": [0.9, 0.5, 0.3],
            "val_cross_entropy": [2.0, 1.0, 0.5],
            "b_simple": [10.0, 40.0, 80.0],
        }
    )
    fits = pd.DataFrame(
        {
            "workload": ["w", "w"],
            "optimizer": ["sgd", "momentum"],
            "b_crit": [40.0, 160.0],
            "b_crit_lo": [30.0, 100.0],
            "b_crit_hi": [50.0, 300.0],
            "b_crit_constrained": [True, False],
        }
    )
    config = {"workloads": {"w": {"target": {"metric": "error", "value": 0.6, "direction": "minimize"}}}}
    comparison = compare_with_fits(curves, fits, config)
    assert list(comparison["b_simple"]) == [40.0, 40.0]  # first evaluation below the target
    assert list(comparison["b_simple_over_b_crit"]) == [1.0, 0.25]
    assert list(comparison["b_simple_in_interval"]) == [True, False]
    text = summary(comparison)
    assert "w, momentum: predicted B_simple = 40" in text and "0.25x" in text and "2.0 doublings" in text


@pytest.mark.slow
@pytest.mark.parametrize("language_model", [False, True])  # a language model's loss is the mean over its tokens
def test_one_backward_pass_gives_each_chunk_gradient_and_the_big_batch_gradient(language_model):
    import tensorflow as tf

    from batch_science.models.registry import get_model
    from batch_science.models.trial_axis import Mlp
    from batch_science.training.noise_scale import make_train_step

    chunks, small = 4, 3
    rng = np.random.default_rng(0)
    if language_model:  # 4 tokens of a 7-word vocabulary per example, a next-token label at each
        model, input_shape, classes = (
            get_model({"name": "transformer_lm", "layers": 1, "d_model": 8, "heads": 2, "d_ff": 8}),
            (4,),
            7,
        )
        x = rng.integers(0, classes, (chunks, small, 4)).astype(np.float32)
        y = rng.integers(0, classes, (chunks, small, 4)).astype(np.int32)
    else:
        model, input_shape, classes = Mlp(hidden=(8,)), (5,), 3
        x = rng.standard_normal((chunks, small, 5)).astype(np.float32)
        y = rng.integers(0, classes, (chunks, small)).astype(np.int32)
    weights = [tf.constant(w[None], tf.float32) for w in model.init(0, input_shape, classes)]

    def gradient(xs, ys):  # an independent plain gradient of the mean loss over a batch
        with tf.GradientTape() as tape:
            tape.watch(weights)
            logits = model.apply(weights, tf.constant(xs[None]), shared=False)[0]
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(ys, logits))
        return np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, weights)])

    metaparameters = {"learning_rate": 0.1, "momentum": 0.0, "decay_steps": 0.0, "end_factor": 1.0}
    step = make_train_step(model, chunks, "sgd", metaparameters)
    new_weights, _, _, norm_sq_small, norm_sq_big = step(weights, {}, tf.constant(0), x, y)
    per_chunk = [gradient(x[i], y[i]) for i in range(chunks)]
    big = gradient(x.reshape(-1, *input_shape), y.reshape(-1, *y.shape[2:]))
    assert float(norm_sq_small) == pytest.approx(np.mean([g @ g for g in per_chunk]), rel=1e-4)
    assert float(norm_sq_big) == pytest.approx(big @ big, rel=1e-4)
    updated = np.concatenate([w.numpy().ravel() for w in new_weights])
    before = np.concatenate([w.numpy().ravel() for w in weights])
    np.testing.assert_allclose(updated, before - 0.1 * big, rtol=1e-4, atol=1e-6)
