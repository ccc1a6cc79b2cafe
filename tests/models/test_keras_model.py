"""A Keras model by import path in the engine: the native MLP's curves in float64, per-trial seeds,
batch norm with population statistics, dropout keyed by trial and step."""

from pathlib import Path

import numpy as np
import pytest

from batch_science.models.keras_model import KerasModel
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
    keras = Engine(keras_mlp, arrays, "nesterov", 16, precision="float64").run(trials, TARGET, group_size=2)
    assert keras_mlp.vectorizes, "dense layers vectorise: trials share the graph along the trial axis"
    assert [o.status for o in keras] == [o.status for o in native]
    np.testing.assert_array_equal(np.array(curves(keras), float), np.array(curves(native), float))


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
