"""The optimizers' update rules, their per-weight state and the learning-rate schedule, written once
for every trainer.

In the paper's parametrisation (the velocity accumulates gradients, Shallue et al. 2019, eq. 2-4):
    sgd:       w' = w - lr g
    momentum:  v' = m v + g,  w' = w - lr v'
    nesterov:  v' = m v + g,  w' = w - lr (g + m v')
and Adam as `keras.optimizers.Adam` (Kingma & Ba 2015, bias-corrected, epsilon outside the root),
at its t-th update (t = the trial's step + 1):
    adam:      m' = m + (1 - b1) (g - m),  s' = s + (1 - b2) (g^2 - s),
               w' = w - lr sqrt(1 - b2^t) / (1 - b1^t) m' / (sqrt(s') + eps)
with lr decayed linearly from learning_rate to learning_rate * end_factor over decay_steps steps,
constant after them (and throughout if decay_steps is 0).

`STATE` names what each optimizer keeps per weight between steps, each zero at step 0; trainers
carry a state as a dict of those names to lists of tensors (one per weight), so the engine, its
checkpoints, the data-parallel trainer and the noise-scale run hold any optimizer's state the same
way. Adam's bias correction needs the number of updates made, which is the trial's step that every
trainer already carries (and a checkpoint saves).

The functions use only arithmetic operators and an array namespace (NumPy or TensorFlow), so the
compiled engine, the data-parallel trainer and the noise-scale run apply the same expressions to
tensors, and the NQM's exact recursion (training/nqm.py, the analytic twin of `update`) uses
`learning_rate_at` on NumPy arrays.
"""

from __future__ import annotations

import numpy as np

from batch_science.trials import OPTIMIZERS

# What each optimizer keeps per weight between steps (zeros at step 0).
STATE = {
    "sgd": (),
    "momentum": ("velocity",),
    "nesterov": ("velocity",),
    "adam": ("first_moment", "second_moment"),
}


def check_optimizer(optimizer: str) -> str:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer '{optimizer}': unknown (known: {', '.join(OPTIMIZERS)})")
    return optimizer


def zero_state(optimizer: str, weights, zeros_like) -> dict:
    """The state of `optimizer` at step 0 for `weights`: a list of zeros like them per slot of STATE."""
    return {name: [zeros_like(w) for w in weights] for name in STATE[optimizer]}


def learning_rate_at(step, learning_rate, decay_steps, end_factor, xp=np):
    """The learning rate at `step` (a float or array, cast to the rates' type by the caller)."""
    decay = xp.maximum(decay_steps, 1.0)
    progress = xp.minimum(step, decay) / decay
    return learning_rate * xp.where(decay_steps > 0, 1 - (1 - end_factor) * progress, xp.ones_like(progress))


def step_scalars(optimizer: str, hyper: dict, step, keep=None, xp=np) -> dict:
    """The per-trial scalars `update` reads at `step` (the updates a trial has made so far), from a
    trial's metaparameters `hyper` (per-trial values, trials.METAPARAMETERS and the optimizer's own).

    Where `keep` is false the scalars leave a weight and its state exactly as they are (the engine's
    slots that do not train this step, whose gradient is zero): a learning rate of zero and decay
    rates of one, so no per-weight select is needed.
    """
    rate = learning_rate_at(step, hyper["learning_rate"], hyper["decay_steps"], hyper["end_factor"], xp)
    if optimizer == "adam":
        t = step + 1
        rate = rate * xp.sqrt(1 - hyper["beta2"] ** t) / (1 - hyper["beta1"] ** t)
        decays, others = {"beta1": hyper["beta1"], "beta2": hyper["beta2"]}, {"epsilon": hyper["epsilon"]}
    else:
        decays, others = {"momentum": hyper["momentum"]}, {}
    if keep is not None:
        rate = xp.where(keep, rate, xp.zeros_like(rate))
        decays = {name: xp.where(keep, value, xp.ones_like(value)) for name, value in decays.items()}
    return {"learning_rate": rate, **decays, **others}


def update(optimizer: str, weight, state: dict, gradient, scalars: dict, xp=np):
    """One step of `optimizer` on one weight: (new weight, new state), `state` this weight's slots of
    STATE by name, `scalars` from `step_scalars`, broadcast against the weight (per trial, in the engine)."""
    rate = scalars["learning_rate"]
    if optimizer == "sgd":
        return weight - rate * gradient, {}
    if optimizer == "adam":
        beta1, beta2 = scalars["beta1"], scalars["beta2"]
        first = state["first_moment"] + (gradient - state["first_moment"]) * (1 - beta1)
        second = state["second_moment"] + (gradient * gradient - state["second_moment"]) * (1 - beta2)
        direction = first / (xp.sqrt(second) + scalars["epsilon"])
        return weight - rate * direction, {"first_moment": first, "second_moment": second}
    momentum = scalars["momentum"]
    velocity = momentum * state["velocity"] + gradient
    direction = gradient + momentum * velocity if optimizer == "nesterov" else velocity
    return weight - rate * direction, {"velocity": velocity}


def update_weights(
    optimizer: str, weights, state: dict, gradients, scalars: dict, broadcast=lambda value, like: value, xp=np
):
    """`update` on every weight: (new weights, new state), each scalar passed through
    `broadcast(value, weight)` first (the engine's per-trial reshape)."""
    new_weights, new_state = [], {name: [] for name in state}
    for i, (weight, gradient) in enumerate(zip(weights, gradients)):
        own = {name: value[i] for name, value in state.items()}
        weight, own = update(
            optimizer, weight, own, gradient, {name: broadcast(value, weight) for name, value in scalars.items()}, xp
        )
        new_weights.append(weight)
        for name, value in own.items():
            new_state[name].append(value)
    return new_weights, new_state
