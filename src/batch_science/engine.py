"""The multi-trial training engine: many trials of one study trained together in compiled graphs.

Each trial has its own weights (a leading trial axis on every tensor), learning rate, momentum,
schedule, label smoothing and batch stream. The train-and-evaluate loop runs in XLA-compiled
`tf.function`s; Python only runs once per evaluation interval, to record curves, decide which
trials have finished and drop them from the graph. A trial's batches and initial weights depend
only on its own seed, so its results do not depend on which trials share its graph.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

REACHED, NOT_REACHED, INFEASIBLE = "reached", "not_reached", "infeasible"
OPTIMIZERS = ("sgd", "momentum", "nesterov")
# Work per compiled step worth batching trials up to: beyond it one trial fills the machine.
AUTO_GROUP_FLOPS = 2**24
MAX_GROUP = 64


@dataclass
class Target:
    metric: str  # "error" or "cross_entropy" on the validation split
    value: float
    direction: str = "minimize"

    def met(self, value: float) -> bool:
        # Strictly better than the goal, as the paper's analysis code compares.
        return value < self.value if self.direction == "minimize" else value > self.value


@dataclass
class TrialOutcome:
    trial: dict
    status: str
    steps_to_result: float
    best_metric: float
    best_step: int
    final_step: int
    curve: list[dict] = field(default_factory=list)


def auto_group_size(flops_per_example: int, batch_size: int, n_trials: int) -> int:
    """Trials per graph: enough to amortise per-step overhead, no more than one graph's worth of work."""
    group = AUTO_GROUP_FLOPS // max(1, flops_per_example * batch_size)
    group = 2 ** int(math.log2(group)) if group >= 1 else 1
    return int(max(1, min(group, MAX_GROUP, n_trials)))


def _batch_indices(tf, seeds, step, batch_size: int, n_examples: int):
    """Per-trial minibatch indices from a counter-based hash of (trial seed, step, slot).

    Sampling is with replacement, i.i.d. per step; it needs no state, so a trial's batches are
    the same whichever trials share its graph and wherever it resumes.
    """
    bits = tf.bitwise
    mask = tf.constant(0xFFFFFFFF, tf.int64)
    slots = tf.range(batch_size, dtype=tf.int64)
    x = bits.bitwise_and(seeds[:, None] * 0x9E3779B1 + tf.cast(step, tf.int64) * 0x85EBCA77 + slots[None, :] * 0xC2B2AE3D, mask)
    for shift, multiplier in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        x = bits.bitwise_and(bits.bitwise_xor(x, bits.right_shift(x, shift)) * multiplier, mask)
    x = bits.bitwise_xor(x, bits.right_shift(x, 16))
    return x % n_examples


def _per_trial(tf, values, like):
    """Broadcast a [trials] vector against a [trials, ...] tensor."""
    return tf.reshape(values, [-1] + [1] * (len(like.shape) - 1))


class Engine:
    """Compiled train/evaluate functions for one (model, data, optimizer, batch size)."""

    def __init__(self, model, arrays, optimizer: str, batch_size: int, precision: str = "float32", eval_batch_size: int = 8192):
        import tensorflow as tf

        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer '{optimizer}': unknown (known: {', '.join(OPTIMIZERS)})")
        self.tf, self.model, self.optimizer, self.batch_size = tf, model, optimizer, batch_size
        self.dtype = tf.float64 if precision == "float64" else tf.float32
        self.input_shape = arrays.x_train.shape[1:]
        self.num_classes = arrays.num_classes
        self.x_train = tf.constant(arrays.x_train, self.dtype)
        self.y_train = tf.constant(arrays.y_train, tf.int32)
        self.x_validation = tf.constant(arrays.x_validation, self.dtype)
        self.y_validation = tf.constant(arrays.y_validation, tf.int32)
        self.eval_batch_size = eval_batch_size
        self.train_chunk = tf.function(self._train_chunk, jit_compile=True)
        self.evaluate = tf.function(self._evaluate, jit_compile=True)

    # -- compiled pieces -------------------------------------------------------------------
    def _loss(self, logits, labels, label_smoothing):
        tf = self.tf
        log_probs = tf.nn.log_softmax(logits)
        true_class = -tf.reduce_sum(tf.one_hot(labels, self.num_classes, dtype=logits.dtype) * log_probs, axis=-1)
        uniform = -tf.reduce_mean(log_probs, axis=-1)
        smoothing = label_smoothing[:, None]
        return tf.reduce_mean((1 - smoothing) * true_class + smoothing * uniform, axis=-1)  # [trials]

    def _train_chunk(self, weights, velocity, alive, hyper, start_step, n_steps):
        """Train all trials for n_steps from start_step; frozen once infeasible."""
        tf = self.tf
        n_examples = self.x_train.shape[0]

        def step_fn(i, weights, velocity, alive, loss_sum):
            step = start_step + i
            decay = tf.maximum(hyper["decay_steps"], 1.0)
            progress = tf.minimum(tf.cast(step, self.dtype), decay) / decay
            rate = hyper["learning_rate"] * tf.where(
                hyper["decay_steps"] > 0, 1 - (1 - hyper["end_factor"]) * progress, tf.ones_like(progress)
            )
            index = _batch_indices(tf, hyper["seed"], step, self.batch_size, n_examples)
            x, y = tf.gather(self.x_train, index), tf.gather(self.y_train, index)
            with tf.GradientTape() as tape:
                tape.watch(weights)
                loss = self._loss(self.model.apply(weights, x, shared=False), y, hyper["label_smoothing"])
                total = tf.reduce_sum(tf.where(alive, loss, tf.zeros_like(loss)))
            grads = tape.gradient(total, weights)
            alive = alive & tf.math.is_finite(loss) & (loss < hyper["loss_limit"])
            new_weights, new_velocity = [], []
            for w, v, g in zip(weights, velocity, grads):
                lr, m, keep = (_per_trial(tf, t, w) for t in (rate, hyper["momentum"], alive))
                if self.optimizer == "sgd":
                    v_next, w_next = v, w - lr * g
                else:
                    v_next = m * v + g
                    direction = g + m * v_next if self.optimizer == "nesterov" else v_next
                    w_next = w - lr * direction
                new_weights.append(tf.where(keep, w_next, w))
                new_velocity.append(tf.where(keep, v_next, v))
            loss_sum = loss_sum + tf.where(alive, loss, tf.zeros_like(loss))
            return i + 1, new_weights, new_velocity, alive, loss_sum

        loss_sum = tf.zeros_like(hyper["learning_rate"])
        _, weights, velocity, alive, loss_sum = tf.while_loop(
            lambda i, *_: i < n_steps, step_fn, [tf.constant(0), weights, velocity, alive, loss_sum]
        )
        return weights, velocity, alive, loss_sum / tf.cast(tf.maximum(n_steps, 1), self.dtype)

    def _evaluate(self, weights):
        """Validation cross-entropy and error of every trial, the validation set on the device."""
        tf = self.tf
        n = self.x_validation.shape[0]
        n_trials = weights[0].shape[0]
        ce_sum = tf.zeros([n_trials], self.dtype)
        wrong = tf.zeros([n_trials], self.dtype)
        for start in range(0, n, self.eval_batch_size):
            x = self.x_validation[start : start + self.eval_batch_size]
            y = self.y_validation[start : start + self.eval_batch_size]
            logits = self.model.apply(weights, x, shared=True)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.broadcast_to(y[None], logits.shape[:2]), logits)
            ce_sum += tf.reduce_sum(ce, axis=1)
            wrong += tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) != y[None], self.dtype), axis=1)
        return ce_sum / n, wrong / n

    # -- driver ----------------------------------------------------------------------------
    def _initial_state(self, trials):
        tf = self.tf
        per_trial = [self.model.init(t["seed"], self.input_shape, self.num_classes) for t in trials]
        weights = [tf.constant(np.stack(ws), self.dtype) for ws in zip(*per_trial)]
        velocity = [tf.zeros_like(w) for w in weights]
        hyper = {
            key: tf.constant([float(t[key]) for t in trials], self.dtype)
            for key in ("learning_rate", "momentum", "decay_steps", "end_factor", "label_smoothing")
        }
        hyper["seed"] = tf.constant([t["seed"] for t in trials], tf.int64)
        return weights, velocity, tf.ones([len(trials)], tf.bool), hyper

    def run(
        self,
        trials: list[dict],
        target: Target,
        *,
        divergence_factor: float = 100.0,
        stop_at_target: bool = True,
        group_size: int | None = None,
        on_finish: Callable[[TrialOutcome], None] = lambda outcome: None,
        progress: "Progress | None" = None,
    ) -> list[TrialOutcome]:
        """Train `trials` (all with the same step budget and eval interval) in groups."""
        if not trials:
            return []
        group_size = group_size or auto_group_size(
            self.model.flops_per_example(self.input_shape, self.num_classes), self.batch_size, len(trials)
        )
        outcomes = []
        for start in range(0, len(trials), group_size):
            outcomes += self._run_group(trials[start : start + group_size], target, divergence_factor, stop_at_target, on_finish, progress)
        return outcomes

    def _run_group(self, trials, target, divergence_factor, stop_at_target, on_finish, progress):
        tf = self.tf
        budget, eval_every = trials[0]["step_budget"], trials[0]["eval_every"]
        weights, velocity, alive, hyper = self._initial_state(trials)
        initial_loss, _ = self.evaluate(weights)
        hyper["loss_limit"] = divergence_factor * tf.maximum(initial_loss, math.log(self.num_classes))
        outcomes = [TrialOutcome(t, NOT_REACHED, math.nan, math.nan, 0, 0) for t in trials]
        rows = list(range(len(trials)))  # graph row -> position in `outcomes`; None once finished
        train_loss = np.full(len(trials), np.nan)
        step = 0
        while True:
            val_loss, val_error = (t.numpy() for t in self.evaluate(weights))
            still_alive = alive.numpy()
            keep = []
            for row, index in enumerate(rows):
                if index is None:
                    continue
                outcome = outcomes[index]
                metric = val_error[row] if target.metric == "error" else val_loss[row]
                outcome.final_step = step
                outcome.curve.append(
                    {"step": step, "train_cross_entropy": float(train_loss[row]), "val_cross_entropy": float(val_loss[row]), "val_error": float(val_error[row])}
                )
                if not still_alive[row] or not math.isfinite(val_loss[row]):
                    outcome.status = INFEASIBLE
                    outcome.steps_to_result = math.nan
                elif target.met(metric) and outcome.status != REACHED:
                    outcome.status, outcome.steps_to_result = REACHED, float(step)
                if outcome.status != INFEASIBLE and math.isfinite(metric) and not (
                    math.isfinite(outcome.best_metric) and not _better(metric, outcome.best_metric, target)
                ):
                    outcome.best_metric, outcome.best_step = float(metric), step
                finished = outcome.status == INFEASIBLE or step >= budget or (stop_at_target and outcome.status == REACHED)
                if finished:
                    on_finish(outcome)
                    if progress:
                        progress.trial_finished(outcome)
                else:
                    keep.append(row)
            if not keep:
                break
            if len(keep) <= len(rows) // 2:
                # Finished trials leave the graph. Sizes stay powers of two (padded with finished
                # rows, frozen) so each halving costs at most one more compilation.
                size = 2 ** math.ceil(math.log2(len(keep)))
                padding = [row for row in range(len(rows)) if row not in keep][: size - len(keep)]
                take = tf.constant(keep + padding)
                weights = [tf.gather(w, take) for w in weights]
                velocity = [tf.gather(v, take) for v in velocity]
                alive = tf.gather(alive & tf.constant([row in keep for row in range(len(rows))]), take)
                hyper = {key: tf.gather(value, take) for key, value in hyper.items()}
                rows = [rows[row] for row in keep] + [None] * len(padding)
            else:
                rows = [index if row in keep else None for row, index in enumerate(rows)]
            n_steps = min(eval_every, budget - step)
            weights, velocity, alive, loss = self.train_chunk(weights, velocity, alive, hyper, tf.constant(step), tf.constant(n_steps))
            train_loss = loss.numpy()
            step += n_steps
            if progress:
                progress.advanced(n_steps * len(keep), step, budget, len(keep))
        return outcomes


def _better(value: float, best: float, target: Target) -> bool:
    return value < best if target.direction == "minimize" else value > best


class Progress:
    """Progress and ETA of a tune job, logged at most every `interval` seconds."""

    def __init__(self, label: str, total_trials: int, max_trial_steps: int, interval: float = 10.0):
        self.label, self.total_trials, self.max_trial_steps, self.interval = label, total_trials, max_trial_steps, interval
        self.start = self.last = time.monotonic()
        self.trial_steps = 0
        self.finished = {REACHED: 0, NOT_REACHED: 0, INFEASIBLE: 0}

    def trial_finished(self, outcome: TrialOutcome) -> None:
        self.finished[outcome.status] += 1

    def advanced(self, trial_steps: int, step: int, budget: int, active: int) -> None:
        self.trial_steps += trial_steps
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        rate = self.trial_steps / (now - self.start)
        remaining = self.max_trial_steps - self.trial_steps  # upper bound: trials may stop at target
        done = sum(self.finished.values())
        log.info(
            "%s: %d/%d trials done (%d reached, %d infeasible), group at step %d/%d with %d active, "
            "%.0f trial-steps/s, ETA <= %s",
            self.label, done, self.total_trials, self.finished[REACHED], self.finished[INFEASIBLE],
            step, budget, active, rate, _duration(remaining / rate if rate else math.inf),
        )


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
