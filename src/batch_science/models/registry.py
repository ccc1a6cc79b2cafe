"""Models by name: the config's `model: {name, **size knobs}` -> a model object.

The registry imports its leaves (trial_axis.py, paper.py); they never import it.
"""

from __future__ import annotations

from collections.abc import Callable

from batch_science.models.paper import PAPER_MODELS
from batch_science.models.trial_axis import Cnn1d, Mlp

MODELS: dict[str, Callable[..., object]] = {"mlp": Mlp, "cnn1d": Cnn1d, **PAPER_MODELS}


def get_model(spec: dict):
    """Build a registered model from its config block {name, **size knobs}."""
    knobs = {key: tuple(value) if isinstance(value, list) else value for key, value in spec.items() if key != "name"}
    if spec["name"] not in MODELS:
        raise ValueError(f"model '{spec['name']}': unknown (known: {', '.join(sorted(MODELS))})")
    try:
        return MODELS[spec["name"]](**knobs)
    except TypeError as error:
        raise ValueError(f"model '{spec['name']}': bad size knob ({error})") from None
