"""The training engine: results independent of grouping, batches from the seed alone, models' maths."""

import math
from dataclasses import dataclass

import numpy as np
import pytest

from batch_science.models.trial_axis import Cnn1d, Mlp
from batch_science.training.device import core_cache_bytes
from batch_science.training.engine import Engine, auto_group_size
from batch_science.trials import INFEASIBLE, NOT_REACHED, REACHED, Target

# Learning rates that make a study's three fates: diverge, reach the target, stay short of it.
LEARNING_RATES = [3e-4, 3e-3, 0.03, 0.1, 0.3, 30.0, 100.0]
TARGET = Target("error", 0.6)


def make_trials(budget=200, eval_every=20):
    return [
        {
            "trial_id": i,
            "seed": 1000 + i,
            "learning_rate": lr,
            "momentum": 0.9,
            "decay_steps": 150,
            "end_factor": 0.1,
            "label_smoothing": 0.1 * (i % 2),
            "step_budget": budget,
            "eval_every": eval_every,
        }
        for i, lr in enumerate(LEARNING_RATES)
    ]


@pytest.fixture(scope="module")
def arrays(mnist1d_data_dir):
    from batch_science.data.load import load

    return load({"name": "mnist1d"}, mnist1d_data_dir)


def summary(outcomes):
    return [
        (o.trial["trial_id"], o.status, o.steps_to_result, o.final_step, [p["step"] for p in o.curve]) for o in outcomes
    ]


@pytest.mark.slow
def test_float64_steps_to_result_do_not_depend_on_grouping_or_order(arrays):
    """One trial per graph, then four slots refilled as trials finish, then the same in reverse order."""
    engine = Engine(Mlp((32,)), arrays, "nesterov", 32, precision="float64")
    trials = make_trials()
    alone = engine.run(trials, TARGET, group_size=1)
    together = engine.run(trials, TARGET, group_size=4)
    reversed_order = engine.run(trials[::-1], TARGET, group_size=4)[::-1]
    assert {o.status for o in alone} == {REACHED, NOT_REACHED, INFEASIBLE}, "the study should exercise every fate"
    assert summary(together) == summary(alone)
    assert summary(reversed_order) == summary(alone)
    for a, b in zip(alone, together):
        for point_a, point_b in zip(a.curve, b.curve):
            assert point_b["val_cross_entropy"] == pytest.approx(point_a["val_cross_entropy"], rel=1e-9, nan_ok=True)


@pytest.mark.slow
def test_float64_adam_does_not_depend_on_grouping(arrays):
    """Adam's slots freeze through their scalars while a neighbour trains or a slot is refilled
    (optimizers.step_scalars): the same curves whether a trial is alone or shares its graph, up to
    the last bits XLA may round differently in another graph shape."""
    engine = Engine(Mlp((32,)), arrays, "adam", 32, precision="float64")
    trials = [
        # Moderate rates and epsilon: Adam's m / sqrt(s) turns last-bit differences of tiny
        # gradients into sign flips, which large rates would grow into visible ones.
        dict(trial, learning_rate=lr, momentum=0.0, beta1=0.9 - 0.1 * (i % 3), beta2=0.99, epsilon=1e-3)
        for i, (trial, lr) in enumerate(zip(make_trials(budget=120), [1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 3e-2, 5e-2]))
    ]
    target = Target("error", 0.8)  # within reach of some, at different steps
    alone = engine.run(trials, target, group_size=1)
    together = engine.run(trials[::-1], target, group_size=4)[::-1]
    assert len({o.final_step for o in alone}) > 1, "trials should finish at different steps, so slots are refilled"
    for a, b in zip(alone, together):
        assert (a.status, a.steps_to_result) == (b.status, b.steps_to_result)
        for point_a, point_b in zip(a.curve, b.curve):
            for key in ("train_cross_entropy", "val_cross_entropy"):
                assert point_b[key] == pytest.approx(point_a[key], rel=1e-9, nan_ok=True), (point_a["step"], key)


@dataclass(frozen=True)
class OneTrialMlp(Mlp):
    """An MLP declared unable to share a graph, as a model without a trial axis would be."""

    max_trials_per_graph: int = 1


@pytest.mark.slow
def test_model_limited_to_one_trial_per_graph_runs_each_trial_in_one_reused_graph(arrays):
    trials = make_trials(budget=60)
    engine = Engine(OneTrialMlp((32,)), arrays, "momentum", 32, precision="float64")
    outcomes = engine.run(trials, TARGET, group_size=8)
    assert engine.stats["graph_sizes"] == [1]
    # One compiled call per evaluation interval, never one per step.
    assert engine.stats["calls"] <= sum(math.ceil(o.final_step / 20) + 1 for o in outcomes)
    reference = Engine(Mlp((32,)), arrays, "momentum", 32, precision="float64").run(trials, TARGET, group_size=8)
    assert summary(outcomes) == summary(reference)


def reference_batch_indices(seeds, step, batch_size, n_examples):
    """The batch hash in plain int64 numpy: (seed, step, slot) -> example."""
    mask = 0xFFFFFFFF
    x = (
        np.asarray(seeds, np.int64)[:, None] * 0x9E3779B1
        + step * 0x85EBCA77
        + np.arange(batch_size)[None, :] * 0xC2B2AE3D
    ) & mask
    for shift, multiplier in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        x = ((x ^ (x >> shift)) * multiplier) & mask
    return (x ^ (x >> 16)) % n_examples


def test_batches_depend_only_on_seed_and_step():
    import tensorflow as tf

    from batch_science.training.engine import batch_indices

    seeds, steps = np.array([7, 2**31 - 1, 12345]), np.array([0, 999, 123456])
    got = batch_indices(tf, tf.constant(seeds), tf.constant(steps, tf.int32), 64, 16000).numpy()
    for row, (seed, step) in enumerate(zip(seeds, steps)):
        np.testing.assert_array_equal(got[row], reference_batch_indices([seed], int(step), 64, 16000)[0])
    alone = batch_indices(tf, tf.constant(seeds[1:2]), tf.constant(steps[1:2], tf.int32), 64, 16000).numpy()
    np.testing.assert_array_equal(alone[0], got[1])
    assert len(np.unique(got[0])) > 50, "indices should spread over the training set"


def test_cnn_matches_a_plain_convolution():
    import tensorflow as tf

    model = Cnn1d(channels=(4, 6), kernel=5, stride=2)
    x = np.random.default_rng(0).normal(size=(3, 40))
    per_trial = [model.init(seed, (40,), 10) for seed in (1, 2)]
    stacked = [tf.constant(np.stack(w)) for w in zip(*per_trial)]
    logits = model.apply(stacked, tf.constant(x), shared=True).numpy()
    per_trial_x = model.apply(stacked, tf.constant(np.stack([x, x])), shared=False).numpy()
    np.testing.assert_allclose(per_trial_x, logits, rtol=1e-12)
    for trial, weights in enumerate(per_trial):
        h = tf.constant(x[..., None])
        in_channels = 1
        for layer in range(0, len(weights) - 2, 2):
            kernel = weights[layer].reshape(model.kernel, in_channels, -1)
            padded = tf.pad(h, [[0, 0], [model.kernel // 2] * 2, [0, 0]])
            h = tf.nn.relu(tf.nn.conv1d(padded, kernel, model.stride, "VALID") + weights[layer + 1])
            in_channels = kernel.shape[-1]
        expected = tf.reshape(h, [3, -1]).numpy() @ weights[-2] + weights[-1]
        np.testing.assert_allclose(logits[trial], expected, rtol=1e-10, atol=1e-12)
    assert model.flops_per_example((40,), 10) == 2 * (20 * 5 * 4 + 10 * 20 * 6 + 10 * 6 * 10)


def test_auto_group_size_shrinks_with_work_and_respects_limits():
    sizes = [auto_group_size(30_000, batch, 1000) for batch in (8, 16, 256, 4096)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 1 and sizes[0] > 1
    assert all(s & (s - 1) == 0 for s in sizes), "powers of two"
    assert auto_group_size(30_000, 16, 3) == 3
    assert auto_group_size(30_000, 16, 1000, max_trials_per_graph=1) == 1
    assert auto_group_size(30_000, 16, 1000, bytes_per_trial=2**29) == 2
    # On a CPU a graph's slots stay within a core's cache; an accelerator (no cache_bytes) has no such limit.
    assert auto_group_size(30_000, 16, 1000, bytes_per_trial=2**18, cache_bytes=2**21) == 8
    assert auto_group_size(30_000, 16, 1000, bytes_per_trial=2**18) == 64
    assert auto_group_size(30_000, 16, 1000, bytes_per_trial=2**22, cache_bytes=2**21) == 1


def test_core_cache_is_read_from_the_machine():
    cache = core_cache_bytes()
    assert cache & (cache - 1) == 0 or cache % 1024 == 0, "a size in bytes, as sysfs gives it (e.g. 2048K)"
    assert 2**16 <= cache <= 2**26
