"""A trial trained data-parallel on two devices (MirroredStrategy over two logical CPUs) gives the
same curve and steps to result as the one-device engine with the same global batch and seed."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

# In a fresh process: logical devices must be set up before TensorFlow starts, and this test
# session's TensorFlow may already be running.
TRAIN_ON_ONE_AND_TWO_DEVICES = r"""
import json, sys
from batch_science import distributed
devices = distributed.use_logical_cpus(2)
from batch_science import data
from batch_science.engine import Engine, Target
from batch_science.models import get_model

arrays = data.load({"name": "mnist1d"}, sys.argv[1])
trial = dict(trial_id=0, learning_rate=0.05, momentum=0.9, decay_steps=120, end_factor=0.1, label_smoothing=0.1,
             seed=7, step_budget=160, eval_every=20)
target = Target("error", 0.70)
strategy = distributed.strategy_for(devices)
results = {"replicas": strategy.num_replicas_in_sync}
for precision, optimizer in (("float64", "nesterov"), ("float32", "sgd")):
    engine = Engine(get_model({"name": "mlp", "hidden": [32]}), arrays, optimizer, batch_size=64, precision=precision)
    one = engine.run([trial], target, group_size=1)[0]
    two = distributed.DataParallelTrial(engine, strategy).run(trial, target)
    results[precision] = {"one": [one.status, one.steps_to_result, one.curve], "two": [two.status, two.steps_to_result, two.curve]}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def one_and_two_devices(mnist1d_data_dir) -> dict:
    """Nesterov in float64 and SGD in float32, each on the engine and on two mirrored replicas."""
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_ON_ONE_AND_TWO_DEVICES, mnist1d_data_dir], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("precision, tolerance", [("float64", 1e-9), ("float32", 1e-4)])
def test_two_devices_give_the_one_device_result(one_and_two_devices, precision, tolerance):
    assert one_and_two_devices["replicas"] == 2
    result = one_and_two_devices[precision]
    (status_one, steps_one, curve_one), (status_two, steps_two, curve_two) = result["one"], result["two"]
    assert (status_two, steps_two) == (status_one, steps_one)
    assert [row["step"] for row in curve_two] == [row["step"] for row in curve_one]
    assert len(curve_one) > 2, "the comparison should span several evaluations"
    for row_one, row_two in zip(curve_one, curve_two):
        for key in ("val_cross_entropy", "val_error"):
            assert row_two[key] == pytest.approx(row_one[key], rel=tolerance, abs=tolerance), (row_one["step"], key)
