"""The trial contract every trainer meets: the goal, a trial's outcome and state, its statuses.

A trial is one point of a study's search (learning rate, momentum, schedule, seed, budget). Every
trainer (the compiled engine, the streaming engine, the data-parallel trainer, the NQM's exact
recursion) evaluates it every `eval_every` steps and hands each evaluation to `observe`, which
alone decides its status, steps to result, best metric and whether it is finished. The goal's
direction is decided once, in `Target`; every comparison with a goal or a best value goes
through `strictly_better`, on Python floats, NumPy arrays and TensorFlow tensors alike.

Nothing here imports TensorFlow or any other module of the package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

REACHED, NOT_REACHED, INFEASIBLE, PRUNED = "reached", "not_reached", "infeasible", "pruned"
# PRUNED: stopped before its budget, at or past a step at which another trial of its study had
# already met the goal, without meeting it: it cannot be the study's best (config `prune`).
STATUSES = (REACHED, NOT_REACHED, INFEASIBLE, PRUNED)
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
MOMENTUM_OPTIMIZERS = ("momentum", "nesterov")
# What every trial's search point sets (tuning/search.py), each trainer's per-trial scalars.
METAPARAMETERS = ("learning_rate", "momentum", "decay_steps", "end_factor", "label_smoothing")
# An optimizer's own metaparameters beyond those, in its trials only (a trial of another optimizer
# has none of these keys, so its fingerprint and tables stay as they were).
OWN_METAPARAMETERS = {"adam": ("beta1", "beta2", "epsilon")}
OWN_METAPARAMETER_KEYS = tuple(dict.fromkeys(key for keys in OWN_METAPARAMETERS.values() for key in keys))
# Which metaparameter plays momentum's part in the paper's (learning rate, 1 - momentum) plots:
# Adam's first moment is an exponential average of gradients with coefficient beta1.
MOMENTUM_KEYS = {"sgd": "momentum", "momentum": "momentum", "nesterov": "momentum", "adam": "beta1"}
DIRECTIONS = {"minimize": 1.0, "maximize": -1.0}  # the sign that turns "better" into "smaller"
# Validation metric a target names -> its curve column. Our trainers record error and cross-entropy;
# average precision comes only with an imported release study (Open Images), which never trains.
METRIC_COLUMNS = {
    "error": "val_error",
    "cross_entropy": "val_cross_entropy",
    "average_precision": "val_average_precision",
}
TRAINED_METRICS = ("error", "cross_entropy")


def strictly_better(value, than, sign):
    """Whether `value` is strictly better than `than` for a goal of direction `sign` (DIRECTIONS).

    Negation is exact in floating point, so this is `value < than` when minimizing and
    `value > than` when maximizing, bit for bit; NaN is never better. The paper's analysis code
    counts a goal as met when the metric is strictly better than it.
    """
    return sign * value < sign * than


@dataclass(frozen=True)
class Target:
    """The goal of a workload: its validation `metric` strictly better than `value`."""

    metric: str  # "error", "cross_entropy" or "average_precision" on the validation split (METRIC_COLUMNS)
    value: float
    direction: str = "minimize"

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"target direction '{self.direction}': expected one of {', '.join(DIRECTIONS)}")
        if self.metric not in METRIC_COLUMNS:
            raise ValueError(f"target metric '{self.metric}': expected one of {', '.join(METRIC_COLUMNS)}")

    @property
    def sign(self) -> float:
        return DIRECTIONS[self.direction]

    @property
    def column(self) -> str:
        """The curve column this goal is read from."""
        return METRIC_COLUMNS[self.metric]

    def met(self, value):
        """Whether `value` (a number or an array) meets the goal."""
        return strictly_better(value, self.value, self.sign)

    def better(self, value, best):
        """Whether `value` improves on `best`."""
        return strictly_better(value, best, self.sign)

    def best_index(self, values) -> int | None:
        """Position of the best finite value (the first, on ties), or None if none is finite."""
        values = np.asarray(values, float)
        finite = np.flatnonzero(np.isfinite(values))
        if not len(finite):
            return None
        return int(finite[np.argmin(self.sign * values[finite])])


@dataclass
class TrialOutcome:
    trial: dict
    status: str = NOT_REACHED
    steps_to_result: float = math.nan
    best_metric: float = math.nan
    best_step: int = 0
    final_step: int = 0
    curve: list[dict] = field(default_factory=list)


@dataclass
class TrialState:
    """A trial part-way through training: all it needs to continue exactly where it stopped.

    Its batches are a hash of (seed, step), so from `step` on it sees the batches it would have seen.
    """

    outcome: TrialOutcome  # so far: curve rows, status, best metric and step
    step: int
    weights: list[np.ndarray]
    optimizer_state: dict[str, list[np.ndarray]]  # per slot of training/optimizers.STATE, one array per weight
    alive: bool
    loss_limit: float  # the divergence limit set at its step-0 evaluation


def observe(
    outcome: TrialOutcome,
    target: Target,
    step: int,
    metrics: dict,
    alive: bool,
    stop_at_target: bool = True,
    prune_at: float = math.inf,
) -> bool:
    """Record one evaluation of a trial; return whether the trial is finished.

    `metrics` is the curve row's values (train_cross_entropy, val_cross_entropy, val_error);
    `alive` whether training stayed finite and below its divergence limit. A trial is infeasible
    from the first evaluation at which it is not alive or its validation loss is not finite; its
    steps to result is the first evaluated step that meets the target; its best metric the best
    finite value while feasible (the earliest step on ties). It is finished once infeasible, at
    its step budget, or, with `stop_at_target`, at the target; and pruned (see `prune`) once at
    `prune_at`, the fewest steps to result of its study known so far.
    """
    metric = metrics[target.column]
    outcome.final_step = step
    outcome.curve.append({"step": step, **{key: float(value) for key, value in metrics.items()}})
    if not alive or not math.isfinite(metrics["val_cross_entropy"]):
        outcome.status, outcome.steps_to_result = INFEASIBLE, math.nan
    elif target.met(metric) and outcome.status != REACHED:
        outcome.status, outcome.steps_to_result = REACHED, float(step)
    improves = not math.isfinite(outcome.best_metric) or target.better(metric, outcome.best_metric)
    if outcome.status != INFEASIBLE and math.isfinite(metric) and improves:
        outcome.best_metric, outcome.best_step = float(metric), step
    reached = outcome.status == REACHED
    at_budget = step >= outcome.trial["step_budget"]
    return outcome.status == INFEASIBLE or at_budget or (stop_at_target and reached) or prune(outcome, prune_at)


def prune(outcome: TrialOutcome, prune_at: float) -> bool:
    """Mark a trial pruned if it cannot be its study's best; return whether it is.

    `prune_at` is the fewest steps to result of any trial of the study known so far. A trial
    still running, evaluated at a step at or past it without having met the goal, can first meet
    it at a later step only, so it never wins (ties go to the lowest trial id, and a trial that
    meets the goal exactly at `prune_at` is never pruned: it is evaluated there and reached).
    A trial at its budget is complete, not pruned.
    """
    if outcome.status != NOT_REACHED or outcome.final_step < prune_at:
        return False
    if outcome.final_step >= outcome.trial["step_budget"] or not outcome.curve:
        return False
    outcome.status = PRUNED
    return True


def metaparameter_keys(optimizer: str) -> tuple[str, ...]:
    """The metaparameters a trial of `optimizer` has: METAPARAMETERS and its own."""
    return (*METAPARAMETERS, *OWN_METAPARAMETERS.get(optimizer, ()))


def effective_learning_rate(learning_rate, momentum):
    """lr / (1 - momentum): the step size heavy-ball momentum converges to on a flat slope.

    Adam's trials have momentum 0, so theirs is the learning rate: its first moment is an average
    of gradients, not a sum, and on a flat slope its step is the learning rate per coordinate."""
    return learning_rate / (1 - momentum)
