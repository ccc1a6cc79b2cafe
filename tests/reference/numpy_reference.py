"""An independent float64 NumPy reference of a trial's maths, written from config/README.md's formulas.

It imports nothing from the engine: the MLP's forward and backward pass are written out here, as
are the label-smoothed loss, the optimizers, the schedule, the divergence rule and the goal test.
What it is given from outside is data, not maths: a trial's initial weights (the model's `init`)
and its minibatch indices at each step (the engine's counter-based hash, `batch_indices(step)`).

An optimizer is one function `(weights, state, gradients, learning_rate, trial, step) -> (weights,
state)` in `OPTIMIZERS`: `state` holds a tuple of arrays per weight (STATE_ARRAYS of them, zeros at
step 0), `trial` the trial's metaparameters, `step` the step being taken (0 for the first update).
Adam (two arrays, and `step` for its bias correction) shows that adding one is one function and one
entry in OPTIMIZERS (and STATE_ARRAYS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# -- the optimizers (config/README.md, "Optimizers") ------------------------------------------


def sgd(weights, state, gradients, learning_rate, trial, step):
    """w <- w - lr g; no state."""
    return [w - learning_rate * g for w, g in zip(weights, gradients)], state


def heavy_ball(weights, state, gradients, learning_rate, trial, step):
    """v <- m v + g; w <- w - lr v."""
    m = trial["momentum"]
    velocity = [m * v + g for (v,), g in zip(state, gradients)]
    return [w - learning_rate * v for w, v in zip(weights, velocity)], [(v,) for v in velocity]


def nesterov(weights, state, gradients, learning_rate, trial, step):
    """v <- m v + g; w <- w - lr (g + m v), with the new v."""
    m = trial["momentum"]
    velocity = [m * v + g for (v,), g in zip(state, gradients)]
    new_weights = [w - learning_rate * (g + m * v) for w, g, v in zip(weights, gradients, velocity)]
    return new_weights, [(v,) for v in velocity]


def adam(weights, state, gradients, learning_rate, trial, step):
    """At the t-th update (t = step + 1): m <- m + (1 - b1)(g - m), s <- s + (1 - b2)(g^2 - s),
    w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(s) + eps)."""
    b1, b2, eps, t = trial["beta1"], trial["beta2"], trial["epsilon"], step + 1
    rate = learning_rate * math.sqrt(1 - b2**t) / (1 - b1**t)
    new_weights, new_state = [], []
    for w, (m, s), g in zip(weights, state, gradients):
        m, s = m + (1 - b1) * (g - m), s + (1 - b2) * (g * g - s)
        new_weights.append(w - rate * m / (np.sqrt(s) + eps))
        new_state.append((m, s))
    return new_weights, new_state


OPTIMIZERS = {"sgd": sgd, "momentum": heavy_ball, "nesterov": nesterov, "adam": adam}
STATE_ARRAYS = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2}  # arrays of optimizer state per weight


def initial_state(optimizer: str, weights) -> list[tuple]:
    """The optimizer's state before the first step: zeros."""
    return [tuple(np.zeros_like(w) for _ in range(STATE_ARRAYS[optimizer])) for w in weights]


# -- the schedule, the loss, the model ---------------------------------------------------------


def learning_rate(step: int, initial: float, decay_steps: int, end_factor: float) -> float:
    """lr_t = lr (1 - (1 - end_factor) t / decay_steps) for t <= decay_steps, then lr end_factor;
    the update from step t to t + 1 uses lr_t (the first one lr itself); decay_steps 0: constant."""
    if decay_steps == 0:
        return initial
    if step >= decay_steps:
        return initial * end_factor
    return initial * (1 - (1 - end_factor) * step / decay_steps)


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def smoothed_cross_entropy(logits, labels, smoothing: float) -> float:
    """Mean over examples of (1 - s) (-log p_label) + s mean_k (-log p_k)."""
    log_p = log_softmax(logits)
    true_class = -log_p[np.arange(len(labels)), labels]
    uniform = -log_p.mean(axis=-1)
    return float(np.mean((1 - smoothing) * true_class + smoothing * uniform))


def mlp_forward(weights, x):
    """ReLU MLP, weights [kernel_0, bias_0, kernel_1, ...]: the logits and every layer's input."""
    inputs, h = [], x.reshape(len(x), -1)
    for layer in range(0, len(weights), 2):
        inputs.append(h)
        h = h @ weights[layer] + weights[layer + 1]
        if layer + 2 < len(weights):
            h = np.maximum(h, 0.0)
    return h, inputs


def mlp_loss_and_gradients(weights, x, labels, smoothing: float, classes: int):
    """The smoothed loss of a batch and its gradient by hand-written backpropagation.

    d loss / d logits = (softmax - ((1 - s) onehot + s / K)) / batch.
    """
    logits, inputs = mlp_forward(weights, x)
    soft_target = (1 - smoothing) * np.eye(classes)[labels] + smoothing / classes
    delta = (np.exp(log_softmax(logits)) - soft_target) / len(labels)
    gradients = [None] * len(weights)
    for layer in reversed(range(0, len(weights), 2)):
        h = inputs[layer // 2]
        gradients[layer], gradients[layer + 1] = h.T @ delta, delta.sum(axis=0)
        if layer:
            delta = (delta @ weights[layer].T) * (h > 0)  # h is the ReLU output of the layer below
    return smoothed_cross_entropy(logits, labels, smoothing), gradients


def evaluate(weights, x, labels) -> tuple[float, float]:
    """Validation cross-entropy (no smoothing) and error (argmax differs from the label)."""
    logits, _ = mlp_forward(weights, x)
    log_p = log_softmax(logits)
    return float(-log_p[np.arange(len(labels)), labels].mean()), float(np.mean(logits.argmax(-1) != labels))


# -- the trial's rules -------------------------------------------------------------------------


def divergence_limit(factor: float, initial_validation_loss: float, classes: int) -> float:
    """factor x max(step-0 validation loss, log(classes))."""
    return factor * max(initial_validation_loss, math.log(classes))


def met(value: float, goal: float, direction: str) -> bool:
    """A goal counts only when strictly beaten."""
    return value < goal if direction == "minimize" else value > goal


@dataclass
class Trial:
    """What the reference recorded: status, steps to result, best metric and step, the curve, and
    the weights at every evaluation."""

    status: str = "not_reached"
    steps_to_result: float = math.nan
    best_metric: float = math.nan
    best_step: int = 0
    curve: list[dict] = field(default_factory=list)
    weights: dict[int, list[np.ndarray]] = field(default_factory=dict)
    diverged_at_loss: float = math.nan  # the training loss that crossed the divergence limit


def train(
    trial: dict,
    optimizer: str,
    initial_weights,
    batch_indices,
    data,
    goal: tuple[str, float, str],
    divergence_factor: float,
    stop_at_target: bool = True,
) -> Trial:
    """Train one trial as config/README.md describes; `data` = (x_train, y_train, x_val, y_val, classes),
    `goal` = (curve column, value, direction), `batch_indices(step)` the trial's minibatch at that step.

    Evaluated at step 0 and every eval_every steps (and at the budget). Each step's loss is taken on
    its minibatch before the update; once it is not finite or reaches the divergence limit the
    update is skipped, training stops and the trial is infeasible from the evaluation that closes
    that interval. Steps to result: the first evaluated step strictly better than the goal.
    """
    x_train, y_train, x_val, y_val, classes = data
    column, goal_value, direction = goal
    weights = [np.array(w, float) for w in initial_weights]
    state = initial_state(optimizer, weights)
    result, step, alive, train_losses, limit = Trial(), 0, True, [], math.inf
    while True:
        val_ce, val_error = evaluate(weights, x_val, y_val)
        if step == 0:
            limit = divergence_limit(divergence_factor, val_ce, classes)
        metrics = {
            "train_cross_entropy": float(np.mean(train_losses)) if train_losses else math.nan,
            "val_cross_entropy": val_ce,
            "val_error": val_error,
        }
        result.curve.append({"step": step, **metrics})
        result.weights[step] = [w.copy() for w in weights]
        if not alive or not math.isfinite(val_ce):
            result.status, result.steps_to_result = "infeasible", math.nan
            return result
        value = metrics[column]
        if met(value, goal_value, direction) and result.status != "reached":
            result.status, result.steps_to_result = "reached", float(step)
        if math.isfinite(value) and (
            not math.isfinite(result.best_metric) or met(value, result.best_metric, direction)
        ):
            result.best_metric, result.best_step = value, step
        if step >= trial["step_budget"] or (stop_at_target and result.status == "reached"):
            return result
        interval_end = min(step + trial["eval_every"], trial["step_budget"])
        train_losses = []
        while step < interval_end:
            if alive:
                index = batch_indices(step)
                loss, gradients = mlp_loss_and_gradients(
                    weights, x_train[index], y_train[index], trial["label_smoothing"], classes
                )
                if not math.isfinite(loss) or loss >= limit:
                    alive, result.diverged_at_loss = False, loss
                else:
                    train_losses.append(loss)
                    rate = learning_rate(step, trial["learning_rate"], trial["decay_steps"], trial["end_factor"])
                    weights, state = OPTIMIZERS[optimizer](weights, state, gradients, rate, trial, step)
            step += 1
