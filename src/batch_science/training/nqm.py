"""The noisy quadratic model (Zhang et al. 2019): steps to target computed exactly, without sampling.

Loss L(theta) = 1/2 sum_i h_i theta_i^2 with curvatures h_i = i^-p (i = 1..K), theta_0 ~ N(0, I),
and minibatch gradients g = H theta + noise, the noise independent across steps with per-coordinate
variance c_i / B, c_i = h_i (noise covariance proportional to H, as in the paper).

The optimizers are training/optimizers.py's, in its parametrisation (velocity accumulates gradients):
    sgd:       theta' = theta - a g
    momentum:  v' = b v + g,  theta' = theta - a v'
    nesterov:  v' = b v + g,  theta' = theta - a (g + b v')
and Adam as Zhang et al. (2019) model a preconditioned optimizer: its bias-corrected first moment
(an exponential average of gradients with coefficient b = beta1) with the gradient preconditioned
by H^-p instead of divided by the root of its second moment (p = nqm.preconditioner_power; 0.5
reads Adam's square root; beta2 and epsilon have no part). With v = m / (1 - b) that is heavy-ball
momentum at a per-coordinate rate:
    adam:      v' = b v + g,  theta' = theta - a (1 - b) / (1 - b^t) h^-p v'   (t-th step)
Per coordinate each is linear, (theta, v)' = M (theta, v) + n xi, so the second moments
P = [[E theta^2, E theta v], [E theta v, E v^2]] follow P' = M P M^T + (c_i / B) n n^T exactly, and the
expected loss is 1/2 sum_i h_i E theta_i^2. Every function is vectorised over coordinates and over
a set of (learning rate, momentum) points, which share the quadratic and the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from batch_science.training.optimizers import check_optimizer, learning_rate_at
from batch_science.trials import MOMENTUM_KEYS, Target, TrialOutcome, observe


@dataclass(frozen=True)
class Quadratic:
    """The model: dimension K and curvature spectrum h_i = i^-spectrum_exponent."""

    dimension: int = 1000
    spectrum_exponent: float = 1.0

    @property
    def curvature(self) -> np.ndarray:
        return np.arange(1, self.dimension + 1, dtype=float) ** -self.spectrum_exponent

    @property
    def noise(self) -> np.ndarray:
        """Per-example gradient noise variance c_i (a batch of B has c_i / B)."""
        return self.curvature

    @property
    def initial_loss(self) -> float:
        return 0.5 * float(self.curvature.sum())


def quadratic_from_config(spec: dict) -> Quadratic:
    """The model of a workload's `nqm` config block."""
    return Quadratic(int(spec["dimension"]), float(spec["spectrum_exponent"]))


class MomentRecursion:
    """Exact second moments of (theta, v) for a set of points, one row per point.

    `momentum` is each point's momentum (Adam: beta1, trials.MOMENTUM_KEYS); `preconditioner_power`
    the p of Adam's H^-p (adam only)."""

    def __init__(self, quadratic: Quadratic, optimizer: str, batch_size: float, momentum, preconditioner_power=0.0):
        self.optimizer = check_optimizer(optimizer)
        self.h = quadratic.curvature[None, :]
        # Deterministic gradients are batch size infinity: no noise.
        self.noise = quadratic.noise[None, :] / batch_size if math.isfinite(batch_size) else np.zeros_like(self.h)
        self.momentum = np.atleast_1d(np.asarray(momentum, dtype=float))
        if optimizer == "sgd":
            self.momentum = np.zeros_like(self.momentum)
        n_points = len(self.momentum)
        self.theta2 = np.ones((n_points, quadratic.dimension))  # theta_0 ~ N(0, I)
        self.cross = np.zeros_like(self.theta2)
        self.v2 = np.zeros_like(self.theta2)
        self.preconditioned = self.h ** -float(preconditioner_power) if optimizer == "adam" else None
        self.steps = np.zeros(n_points)  # steps made by each point: Adam's bias correction

    def keep(self, mask: np.ndarray) -> None:
        """Drop the points that are done (their rows), so later steps cost less."""
        self.theta2, self.cross, self.v2 = self.theta2[mask], self.cross[mask], self.v2[mask]
        self.momentum, self.steps = self.momentum[mask], self.steps[mask]

    def loss(self) -> np.ndarray:
        return 0.5 * (self.theta2 * self.h).sum(axis=1)

    def step(self, rate: np.ndarray, frozen: np.ndarray | None = None) -> None:
        """One step at learning rates `rate` [points]; rows where `frozen` is true stay as they are."""
        a = np.asarray(rate, dtype=float)[:, None]
        b = self.momentum[:, None]
        if self.preconditioned is not None:  # Adam: heavy ball at a bias-corrected, preconditioned rate
            a = a * (1 - b) / (1 - b ** (self.steps[:, None] + 1)) * self.preconditioned
        x = a * self.h
        if self.optimizer == "nesterov":
            m00, m01, n0 = 1 - x * (1 + b), -a * b * b, -a * (1 + b)
        else:  # sgd is momentum with b = 0: E theta v stays 0 and never feeds back.
            m00, m01, n0 = 1 - x, -a * b, -a
        m10, m11 = self.h, b  # v' = h theta + b v + xi, so n1 = 1
        t, c, v, s2 = self.theta2, self.cross, self.v2, self.noise
        theta2 = m00 * m00 * t + 2 * m00 * m01 * c + m01 * m01 * v + n0 * n0 * s2
        cross = m00 * m10 * t + (m00 * m11 + m01 * m10) * c + m01 * m11 * v + n0 * s2
        v2 = m10 * m10 * t + 2 * m10 * m11 * c + m11 * m11 * v + s2
        if frozen is not None and frozen.any():
            stay = frozen[:, None]
            theta2, cross, v2 = np.where(stay, t, theta2), np.where(stay, c, cross), np.where(stay, v, v2)
        self.theta2, self.cross, self.v2 = theta2, cross, v2
        self.steps = self.steps + (1 if frozen is None else ~frozen)


def expected_loss_curve(
    quadratic: Quadratic,
    optimizer: str,
    batch_size: float,
    learning_rate,
    momentum=0.0,
    steps: int = 100,
    preconditioner_power: float = 0.0,
) -> np.ndarray:
    """Expected loss at steps 0..steps, shape [steps + 1, points], at constant learning rates."""
    learning_rate = np.atleast_1d(np.asarray(learning_rate, dtype=float))
    momentum = np.broadcast_to(np.asarray(momentum, dtype=float), learning_rate.shape)
    recursion = MomentRecursion(quadratic, optimizer, batch_size, momentum, preconditioner_power)
    losses = [recursion.loss()]
    for _ in range(steps):
        recursion.step(learning_rate)
        losses.append(recursion.loss())
    return np.array(losses)


def steps_to_target(
    quadratic: Quadratic,
    optimizer: str,
    batch_size: float,
    learning_rate,
    momentum,
    target_loss: float,
    max_steps: int,
    divergence_factor: float = 100.0,
    first_only: bool = False,
    preconditioner_power: float = 0.0,
) -> np.ndarray:
    """First step whose expected loss is strictly below target, per point (inf if never or diverged).

    With first_only, stop as soon as any point reaches the target (the others get inf): all
    points step together, so that is already the fewest steps, at a fraction of the cost.
    """
    learning_rate = np.atleast_1d(np.asarray(learning_rate, dtype=float))
    momentum = np.broadcast_to(np.asarray(momentum, dtype=float), learning_rate.shape).copy()
    result = np.full(len(learning_rate), np.inf)
    recursion = MomentRecursion(quadratic, optimizer, batch_size, momentum, preconditioner_power)
    active = np.arange(len(learning_rate))  # original index of each row still running
    rates = learning_rate.copy()
    limit = divergence_factor * quadratic.initial_loss
    for step in range(max_steps + 1):
        loss = recursion.loss()
        reached = loss < target_loss
        result[active[reached]] = step
        if first_only and reached.any():
            break
        done = reached | ~np.isfinite(loss) | (loss > limit)
        if done.any():
            active, rates = active[~done], rates[~done]
            recursion.keep(~done)
        if not len(active) or step == max_steps:
            break
        recursion.step(rates)
    return result


def tuned_steps_to_target(
    quadratic: Quadratic,
    optimizer: str,
    batch_size: float,
    target_loss: float,
    learning_rates,
    momenta=(0.0,),
    max_steps: int = 100_000,
    preconditioner_power: float = 0.0,
) -> dict:
    """Fewest steps to target over a grid of constant learning rates (and momenta, Adam: beta1) at one
    batch size."""
    lr_grid, momentum_grid = np.meshgrid(
        np.asarray(learning_rates, float), np.asarray(momenta, float) if optimizer != "sgd" else [0.0]
    )
    lr_grid, momentum_grid = lr_grid.ravel(), momentum_grid.ravel()
    steps = steps_to_target(
        quadratic,
        optimizer,
        batch_size,
        lr_grid,
        momentum_grid,
        target_loss,
        max_steps,
        first_only=True,
        preconditioner_power=preconditioner_power,
    )
    best = int(np.argmin(steps))
    return {"steps": float(steps[best]), "learning_rate": float(lr_grid[best]), "momentum": float(momentum_grid[best])}


def run_trials(
    spec: dict,
    optimizer: str,
    batch_size: int,
    trials: list[dict],
    target: Target,
    *,
    divergence_factor: float = 100.0,
    stop_at_target: bool = True,
    on_finish=lambda outcome: None,
) -> list[TrialOutcome]:
    """Evaluate a study's trials on the NQM as the engine trains them: same outcomes, same curves.

    The expected loss stands in for both cross-entropy columns (there is no train/validation gap
    and no classification error), so targets on the NQM use the `cross_entropy` metric.
    """
    if not trials:
        return []
    if target.metric != "cross_entropy":
        raise ValueError(f"NQM target metric '{target.metric}': the NQM measures its expected loss, use cross_entropy")
    quadratic = quadratic_from_config(spec)
    budget, eval_every = trials[0]["step_budget"], trials[0]["eval_every"]
    columns = {key: np.array([float(t[key]) for t in trials]) for key in ("learning_rate", "decay_steps", "end_factor")}
    momentum = [float(t[MOMENTUM_KEYS[optimizer]]) for t in trials]
    recursion = MomentRecursion(quadratic, optimizer, batch_size, momentum, spec.get("preconditioner_power", 0.0))
    limit = divergence_factor * quadratic.initial_loss
    outcomes = [TrialOutcome(t) for t in trials]
    rows = np.arange(len(trials))  # row of the recursion -> index into outcomes
    diverged = np.zeros(len(trials), bool)
    step = 0
    while True:
        loss = recursion.loss()
        diverged |= ~np.isfinite(loss) | (loss > limit)
        if step % eval_every == 0 or step == budget:
            finished = np.zeros(len(rows), bool)
            for row, index in enumerate(rows):
                value = float(loss[row])
                metrics = {"train_cross_entropy": value, "val_cross_entropy": value, "val_error": math.nan}
                finished[row] = observe(outcomes[index], target, step, metrics, not diverged[row], stop_at_target)
                if finished[row]:
                    on_finish(outcomes[index])
            if finished.all():
                break
            if finished.any():
                recursion.keep(~finished)
                rows, diverged = rows[~finished], diverged[~finished]
                columns = {key: value[~finished] for key, value in columns.items()}
        rate = learning_rate_at(step, columns["learning_rate"], columns["decay_steps"], columns["end_factor"])
        recursion.step(rate, frozen=diverged)  # a diverged trial stays as it was, as in the engine
        step += 1
    return outcomes
