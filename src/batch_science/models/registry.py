"""Models by name: the config's `model: {name, **size knobs}` -> a model object, or a user's
Keras model by import path, `model: {keras: "package.module:function", **keywords}` (keras_model.py).

The registry imports its leaves (trial_axis.py, paper.py, keras_model.py); they never import it.
"""

from __future__ import annotations

from collections.abc import Callable

from batch_science.models.keras_model import KerasModel
from batch_science.models.paper import PAPER_MODELS
from batch_science.models.trial_axis import Cnn1d, Mlp

MODELS: dict[str, Callable[..., object]] = {"mlp": Mlp, "cnn1d": Cnn1d, **PAPER_MODELS}


def get_model(spec: dict, search_dir: str | None = None):
    """Build a model from its config block: {name, **size knobs} (registered), or {keras, **keywords}
    (a Keras model factory, imported from `search_dir`, the config's folder, or PYTHONPATH)."""
    if "keras" in spec:
        keywords = {key: value for key, value in spec.items() if key != "keras"}
        return KerasModel(spec["keras"], keywords, search_dir)
    knobs = {key: tuple(value) if isinstance(value, list) else value for key, value in spec.items() if key != "name"}
    if spec["name"] not in MODELS:
        raise ValueError(f"model '{spec['name']}': unknown (known: {', '.join(sorted(MODELS))})")
    try:
        return MODELS[spec["name"]](**knobs)
    except TypeError as error:
        raise ValueError(f"model '{spec['name']}': bad size knob ({error})") from None
