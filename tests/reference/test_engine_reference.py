"""The compiled engine in float64 against an independent computation of what it should give."""

import math

import numpy as np
import pytest

from batch_science.data.arrays import Arrays
from batch_science.models.registry import get_model
from batch_science.training.engine import Engine
from batch_science.trials import Target

pytestmark = pytest.mark.slow

CLASSES, BATCH, HIDDEN = 4, 8, [6]


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
