"""The optimizers' update rules and the learning-rate schedule, written once for every trainer.

In the paper's parametrisation (the velocity accumulates gradients, Shallue et al. 2019, eq. 2-4):
    sgd:       w' = w - lr g
    momentum:  v' = m v + g,  w' = w - lr v'
    nesterov:  v' = m v + g,  w' = w - lr (g + m v')
with lr decayed linearly from learning_rate to learning_rate * end_factor over decay_steps steps,
constant after them (and throughout if decay_steps is 0).

The functions use only arithmetic operators and an array namespace (NumPy or TensorFlow), so the
compiled engine, the data-parallel trainer and the noise-scale run apply the same expressions to
tensors, and the NQM's exact recursion (training/nqm.py, the analytic twin of `update`) uses
`learning_rate_at` on NumPy arrays.
"""

from __future__ import annotations

import numpy as np

from batch_science.trials import OPTIMIZERS


def check_optimizer(optimizer: str) -> str:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer '{optimizer}': unknown (known: {', '.join(OPTIMIZERS)})")
    return optimizer


def learning_rate_at(step, learning_rate, decay_steps, end_factor, xp=np):
    """The learning rate at `step` (a float or array, cast to the rates' type by the caller)."""
    decay = xp.maximum(decay_steps, 1.0)
    progress = xp.minimum(step, decay) / decay
    return learning_rate * xp.where(decay_steps > 0, 1 - (1 - end_factor) * progress, xp.ones_like(progress))


def update(optimizer: str, weight, velocity, gradient, learning_rate, momentum):
    """One step of `optimizer` on one weight: (new weight, new velocity).

    `learning_rate` and `momentum` broadcast against the weight (per trial, in the engine). sgd
    keeps its velocity as it is.
    """
    if optimizer == "sgd":
        return weight - learning_rate * gradient, velocity
    velocity = momentum * velocity + gradient
    direction = gradient + momentum * velocity if optimizer == "nesterov" else velocity
    return weight - learning_rate * direction, velocity
