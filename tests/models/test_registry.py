"""Built-in models: parameter counts, shapes with a trial axis, one trial's init independent of others."""

import numpy as np
import pytest

from batch_science.models.registry import get_model


def parameter_count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def test_mlp_has_the_expected_parameters():
    weights = get_model({"name": "mlp", "hidden": [100, 100]}).init(0, (40,), 10)
    assert parameter_count(weights) == 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10


def test_cnn1d_has_the_expected_parameters():
    weights = get_model({"name": "cnn1d", "channels": [25, 25, 25], "kernel": 5, "stride": 2}).init(0, (40,), 10)
    # Convolutions 1->25->25->25 (kernel 5), lengths 40 -> 20 -> 10 -> 5, dense 5*25 -> 10.
    assert parameter_count(weights) == (5 * 25 + 25) + 2 * (5 * 25 * 25 + 25) + (125 * 10 + 10)


@pytest.mark.parametrize("spec", [{"name": "mlp", "hidden": [16]}, {"name": "cnn1d", "channels": [4, 4]}])
def test_trial_axis_apply_matches_trial_by_trial(spec):
    import tensorflow as tf

    model = get_model(spec)
    x = np.random.default_rng(0).normal(size=(3, 40))
    per_trial = [model.init(seed, (40,), 10) for seed in (1, 2)]
    stacked = [tf.constant(np.stack(ws)) for ws in zip(*per_trial)]
    together = model.apply(stacked, tf.constant(x), shared=True).numpy()
    assert together.shape == (2, 3, 10)
    for t, weights in enumerate(per_trial):
        alone = model.apply([tf.constant(w[None]) for w in weights], tf.constant(x), shared=True).numpy()[0]
        np.testing.assert_allclose(together[t], alone, rtol=1e-10, atol=1e-12)
    per_trial_input = model.apply(stacked, tf.constant(np.stack([x, x])), shared=False).numpy()
    np.testing.assert_allclose(per_trial_input, together, rtol=1e-10, atol=1e-12)


def test_unknown_model_and_bad_knob_are_named():
    with pytest.raises(ValueError, match="model 'resnet9000': unknown"):
        get_model({"name": "resnet9000"})
    with pytest.raises(ValueError, match="model 'mlp': bad size knob"):
        get_model({"name": "mlp", "depth": 3})
