"""The data-parallel trainer and the noise-scale step in float64 against the NumPy reference
(numpy_reference.py): the same curves, statuses and steps to result, the same squared gradient
norms at both batch sizes and the same weights after every step."""

import json
import subprocess
import sys

import numpy as np
import pytest

from batch_science.models.registry import get_model
from batch_science.training.engine import host_batch_indices
from batch_science.training.noise_scale import make_train_step
from batch_science.training.optimizers import zero_state
from batch_science.trials import INFEASIBLE, OPTIMIZERS
from reference import numpy_reference as ref
from reference.test_engine_reference import (
    ADAM,
    BATCH,
    CLASSES,
    DIVERGENCE_FACTOR,
    HIDDEN,
    TOLERANCE,
    TRIALS,
    assert_same_curve,
    for_optimizer,
    reference_run,
    tiny_arrays,
)

pytestmark = pytest.mark.slow

# In a fresh process: logical devices must be set up before TensorFlow starts.
TRAIN_DATA_PARALLEL = r"""
import json, sys
import numpy as np
from batch_science.training import data_parallel
from batch_science.training.device import use_logical_cpus

devices = use_logical_cpus(2)
from batch_science.data.arrays import Arrays
from batch_science.models.registry import get_model
from batch_science.training.engine import Engine
from batch_science.trials import Target

data = np.load(sys.argv[1])
arrays = Arrays(data["x_train"], data["y_train"], data["x_val"], data["y_val"], int(data["classes"]))
args = json.loads(sys.argv[2])
strategy = data_parallel.strategy_for(devices)
results = {"replicas": strategy.num_replicas_in_sync}
for optimizer, trials in args["trials"].items():
    engine = Engine(get_model({"name": "mlp", "hidden": args["hidden"]}), arrays, optimizer, args["batch"], "float64")
    trainer = data_parallel.DataParallelTrial(engine, strategy)
    outcomes = trainer.run_trials(trials, Target("error", args["goal"]), divergence_factor=args["divergence_factor"])
    results[optimizer] = [[o.status, o.steps_to_result, o.best_metric, o.best_step, o.curve] for o in outcomes]
print(json.dumps(results))
"""


def test_data_parallel_trainer_matches_the_reference(tmp_path):
    """Two replicas, each a half of the global batch, for every optimizer; one trial diverges."""
    arrays, model = tiny_arrays(), get_model({"name": "mlp", "hidden": HIDDEN})
    goal = 0.5
    trials = {opt: [for_optimizer(t, opt) for t in TRIALS[1:3]] for opt in OPTIMIZERS}
    data = tmp_path / "data.npz"
    np.savez(data, x_train=arrays.x_train, y_train=arrays.y_train, x_val=arrays.x_validation,
             y_val=arrays.y_validation, classes=CLASSES)  # fmt: skip
    args = dict(trials=trials, hidden=HIDDEN, batch=BATCH, goal=goal, divergence_factor=DIVERGENCE_FACTOR)
    run = subprocess.run(
        [sys.executable, "-c", TRAIN_DATA_PARALLEL, str(data), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert results["replicas"] == 2
    for optimizer in OPTIMIZERS:
        expected = reference_run(arrays, model, optimizer, trials[optimizer], ("val_error", goal, "minimize"))
        assert expected[1].status == INFEASIBLE
        for index, ((status, steps, best, best_step, curve), want) in enumerate(zip(results[optimizer], expected)):
            label = (optimizer, index)
            assert (status, best, best_step) == (want.status, want.best_metric, want.best_step), label
            np.testing.assert_equal(steps if steps is not None else np.nan, want.steps_to_result)
            assert_same_curve(curve, want.curve, label)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_noise_scale_step_matches_the_reference(optimizer):
    """Per-chunk gradients of the small batch, their mean as the big batch's gradient, both squared
    norms, and the optimizer's update on the big batch, step after step."""
    tf = pytest.importorskip("tensorflow")
    arrays, model = tiny_arrays(), get_model({"name": "mlp", "hidden": HIDDEN})
    chunks, small = 4, 2
    metaparameters = {"learning_rate": 0.3, "momentum": 0.8, "decay_steps": 0.0, "end_factor": 1.0}
    if optimizer in ("sgd", "adam"):
        metaparameters["momentum"] = 0.0
    if optimizer == "adam":
        metaparameters.update(ADAM, learning_rate=0.05)
    rate = metaparameters["learning_rate"]
    train_step = make_train_step(model, chunks, optimizer, metaparameters)
    weights = model.init(3, (5,), CLASSES)
    state = ref.initial_state(optimizer, weights)
    got_w = [tf.constant(w[None], tf.float64) for w in weights]
    got_state = zero_state(optimizer, got_w, tf.zeros_like)
    for step in range(4):
        index = host_batch_indices([3], [step], chunks * small, len(arrays.x_train))[0]
        x, y = arrays.x_train[index].reshape(chunks, small, 5), arrays.y_train[index].reshape(chunks, small)
        got_w, got_state, loss, norm_small, norm_big = train_step(got_w, got_state, step, x, y)
        per_chunk = [ref.mlp_loss_and_gradients(weights, x[c], y[c], 0.0, CLASSES) for c in range(chunks)]
        big = [np.mean([g[i] for _, g in per_chunk], axis=0) for i in range(len(weights))]
        want_small = np.mean([sum((gi**2).sum() for gi in g) for _, g in per_chunk])
        assert float(norm_small) == pytest.approx(want_small, rel=TOLERANCE)
        assert float(norm_big) == pytest.approx(sum((g**2).sum() for g in big), rel=TOLERANCE)
        assert float(loss) == pytest.approx(np.mean([loss for loss, _ in per_chunk]), rel=TOLERANCE)
        weights, state = ref.OPTIMIZERS[optimizer](weights, state, big, rate, metaparameters, step)
        for w, want in zip(got_w, weights):
            np.testing.assert_allclose(w.numpy()[0], want, rtol=0, atol=TOLERANCE, err_msg=f"step {step}")
