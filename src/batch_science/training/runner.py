"""The Python side of a multi-trial run: which trial is in which slot, when a slot is refilled, how
many intervals a compiled call holds, when the graph shrinks, and progress with an ETA.

`SlotRunner` drives an engine (training/engine.py, training/streaming_engine.py) through its
compiled `intervals` call and records each evaluation through the trial contract's `observe`, so
a trial's status, steps to result and best metric are decided as every other trainer decides
them. It needs of the engine only its compiled call, model, data shapes and statistics.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import replace

import numpy as np

from batch_science.training.optimizers import zero_state
from batch_science.trials import (
    INFEASIBLE,
    METAPARAMETERS,
    OWN_METAPARAMETERS,
    PRUNED,
    REACHED,
    STATUSES,
    TrialOutcome,
    TrialState,
    observe,
    prune,
)

log = logging.getLogger(__name__)

# Shrinking a graph in the tail costs one XLA compilation (~2-3 s on a CPU core); it is done only
# when the padded slots it removes would otherwise spend more training FLOPs than this (about
# one to two seconds of a CPU core; small-batch steps cost more than their FLOPs say). A FLOP
# count rather than a clock keeps the grouping, and so the float32 results, the same from run to run.
SHRINK_WORTH_FLOPS = 5e10
# A compiled call trains and evaluates several intervals when one interval is little work (large
# batches evaluate every few steps): each call costs 1-4 ms of XLA launch and host work (a call
# of no interval took ~1 ms on the 2-core machine; with 2 intervals per call at batch 4096 it was a
# fifth of the time), so a call holds about this many training FLOPs (a hundred milliseconds or
# more of a CPU core). A FLOP count, not a clock, so the calls, and so the float32 results, are the
# same from run to run.
CALL_FLOPS = 2**34
# Evaluations one call can hold (the static size of its per-interval metric buffers).
MAX_INTERVALS_PER_CALL = 32
# Per-slot scalars of a compiled call: the trial's metaparameters and its divergence factor; a
# trial of an optimizer with metaparameters of its own (trials.OWN_METAPARAMETERS) adds those.
HYPER_KEYS = (*METAPARAMETERS, "divergence_factor")
# With pruning, trials train in rounds, all of them up to a step cap before any goes further, so
# that the study's fewest steps to result is found early: the first round's cap is this share of
# the budget, and each round doubles it. A trial's identity and arithmetic do not change: it is
# set aside between rounds in a TrialState and resumes exactly where it stopped.
FIRST_ROUND_SHARE = 1 / 16


class SlotRunner:
    """Python side of one run: which trial is in which slot, curves, statuses, refills and shrinking."""

    def __init__(
        self,
        engine,
        trials,
        target,
        divergence_factor,
        stop_at_target,
        on_finish,
        progress,
        resume=None,
        on_interval=lambda in_flight: None,
        prune_trials=False,
        share_best=lambda best_step, best_trial: best_step,
    ):
        self.engine, self.tf = engine, engine.tf
        self.resume, self.on_interval = dict(resume or {}), on_interval
        self.trials, self.target = trials, target
        self.divergence_factor, self.stop_at_target = divergence_factor, stop_at_target
        self.on_finish, self.progress = on_finish, progress
        self.outcomes = [TrialOutcome(t) for t in trials]
        self.pending = deque(range(len(trials)))
        self.flops_per_trial_step = engine.training_flops_per_example() * engine.batch_size
        self.hyper_keys = (*HYPER_KEYS, *OWN_METAPARAMETERS.get(engine.optimizer, ()))
        # Pruning (trials.prune): the fewest steps to result of the study known so far, here or,
        # through `share_best` (best step here -> best step of the study), in other jobs.
        self.prune_trials, self.share_best = prune_trials, share_best
        self.best_step, self.found = math.inf, (math.inf, -1)  # the study's; this run's (steps, trial id)
        self.round_cap = math.inf
        if prune_trials and trials:
            self.round_cap = math.ceil(FIRST_ROUND_SHARE * max(t["step_budget"] for t in trials))
        self.set_aside: dict[int, TrialState] = {}  # position in trials -> its state between rounds

    def run(self, n_slots: int) -> list[TrialOutcome]:
        tf, engine = self.tf, self.engine
        shapes = [(n_slots, *w.shape) for w in engine.model.init(0, engine.input_shape, engine.num_classes)]
        self.weights = [tf.zeros(s, engine.dtype) for s in shapes]
        self.state = zero_state(engine.optimizer, self.weights, tf.zeros_like)  # optimizers.STATE: slot -> per weight
        self.alive = tf.zeros([n_slots], tf.bool)
        self.loss_limit = tf.zeros([n_slots], engine.dtype)
        self.hyper = {key: np.zeros(n_slots) for key in self.hyper_keys}
        self.hyper["seed"] = np.zeros(n_slots, np.int64)
        self.hyper["eval_every"] = np.zeros(n_slots, np.int32)
        self.hyper["budget"] = np.zeros(n_slots, np.int32)
        self.steps = np.zeros(n_slots, np.int64)
        self.slots: list[int | None] = [None] * n_slots  # slot -> position in trials
        self.fresh = np.zeros(n_slots, bool)
        self._share_and_prune()
        self._refill()
        compiled_sizes = engine.compiled_sizes
        # The goal, as the compiled call checks it to stop a slot (see Engine.intervals_graph).
        goal = {
            "goal": tf.constant(self.target.value, tf.float64),
            "metric_is_error": tf.constant(self.target.metric == "error"),
            "goal_sign": tf.constant(self.target.sign, tf.float64),
        }
        while any(s is not None for s in self.slots):
            self._cap_budgets()
            hyper = {
                key: tf.constant(value, engine.dtype) for key, value in self.hyper.items() if key in self.hyper_keys
            }
            hyper.update({key: tf.constant(self.hyper[key]) for key in ("seed", "eval_every", "budget")})
            hyper.update(goal)
            started = time.perf_counter()
            results = engine.intervals(
                self.weights,
                self.state,
                self.alive,
                self.loss_limit,
                hyper,
                tf.constant(self.steps, tf.int32),
                tf.constant(self.fresh),
                tf.constant([s is None for s in self.slots]),
                tf.constant(self.stop_at_target),
                tf.constant(self._intervals_per_call()),
            )
            self.weights, self.state, self.alive, self.loss_limit = results[:4]
            records, record_steps = results[4].numpy(), results[5].numpy()
            elapsed = time.perf_counter() - started
            first = len(self.slots) not in compiled_sizes
            compiled_sizes.add(len(self.slots))
            engine.stats["calls"] += 1
            engine.stats["first_call_s" if first else "call_s"] += elapsed
            if first:
                engine.stats["graph_sizes"].append(len(self.slots))
            host_started = time.perf_counter()
            self._record(records, record_steps)
            self._share_and_prune()
            self._refill()
            if not self.pending:
                self._maybe_shrink(compiled_sizes)
            engine.stats["host_s"] += time.perf_counter() - host_started
            self.on_interval(self.in_flight)
        return self.outcomes

    def in_flight(self) -> list[TrialState]:
        """States of the trials part-way through training (not those waiting for their step-0
        evaluation), those set aside between pruning rounds included."""
        rows = [row for row, s in enumerate(self.slots) if s is not None and not self.fresh[row]]
        return self._states(rows) + list(self.set_aside.values())

    def _states(self, rows) -> list[TrialState]:
        """The states of the trials in these slots (a copy from the device)."""
        if not rows:
            return []
        at = self.tf.constant(rows)
        weights = [self.tf.gather(w, at).numpy() for w in self.weights]
        state = {name: [self.tf.gather(v, at).numpy() for v in values] for name, values in self.state.items()}
        alive, loss_limit = self.alive.numpy(), self.loss_limit.numpy()
        return [
            TrialState(
                self.outcomes[self.slots[row]],
                int(self.steps[row]),
                [w[i] for w in weights],
                {name: [v[i] for v in values] for name, values in state.items()},
                bool(alive[row]),
                float(loss_limit[row]),
            )
            for i, row in enumerate(rows)
        ]

    def _intervals_per_call(self) -> int:
        """Enough evaluation intervals per compiled call for CALL_FLOPS of training (see there), but
        in a graph of several slots no more than an eighth of a trial's budget: a slot whose trial
        ends early in a call idles until the call ends. (A call ends once all its slots are done, so
        one slot never idles; CALL_FLOPS keeps calls short enough to checkpoint and stop between.)"""
        occupied = [self.trials[s] for s in self.slots if s is not None]
        eval_every = max(t["eval_every"] for t in occupied)
        interval_flops = len(self.slots) * eval_every * self.flops_per_trial_step
        share_of_budget = min(t["step_budget"] for t in occupied) // ((8 if len(self.slots) > 1 else 1) * eval_every)
        return int(max(1, min(MAX_INTERVALS_PER_CALL, CALL_FLOPS // max(1, interval_flops), share_of_budget)))

    def _record(self, records, record_steps) -> None:
        """Observe each slot's evaluations of the call, in order; a finished trial's slot is freed."""
        trained = 0
        for k in range(MAX_INTERVALS_PER_CALL):
            steps, alive = record_steps[k]
            if (steps < 0).all():  # the call ran k intervals: every later row is empty too
                break
            longest = 0
            for row, index in enumerate(self.slots):
                if index is None or steps[row] < 0:
                    continue
                fresh, self.fresh[row] = self.fresh[row], False
                advanced = int(steps[row] - self.steps[row])
                self.steps[row] = steps[row]
                trained, longest = trained + advanced, max(longest, advanced)
                train_loss, val_ce, val_error = records[k, :, row]
                metrics = {
                    "train_cross_entropy": math.nan if fresh else train_loss,
                    "val_cross_entropy": val_ce,
                    "val_error": val_error,
                }
                self._observe(row, index, int(steps[row]), metrics, bool(alive[row]))
            self.engine.stats["slot_steps"] += len(self.slots) * longest
        self.engine.stats["trial_steps"] += trained
        if self.progress:
            active = sum(s is not None for s in self.slots)
            self.progress.advanced(trained, int(self.steps.max()), max(t["step_budget"] for t in self.trials), active)

    def _observe(self, row, index, step, metrics: dict, still_alive: bool) -> None:
        """Record one evaluation of the trial in `row` (trials.observe); free the slot and report if it finished."""
        outcome = self.outcomes[index]
        prune_at = self.best_step if self.prune_trials else math.inf
        finished = observe(outcome, self.target, step, metrics, still_alive, self.stop_at_target, prune_at)
        if outcome.status == REACHED:
            self.found = min(self.found, (outcome.steps_to_result, outcome.trial.get("trial_id", index)))
            self.best_step = min(self.best_step, self.found[0])
        if finished:
            self.slots[row] = None
            self._finish(outcome)

    def _finish(self, outcome: TrialOutcome) -> None:
        self.on_finish(outcome)
        if self.progress:
            self.progress.trial_finished(outcome)

    # -- pruning: slot budgets, rounds and the study's best step -------------------------------
    def _on_grid(self, trial: dict, steps: float) -> int:
        """The first evaluated step of `trial` at or after `steps` (its budget at most)."""
        if steps >= trial["step_budget"]:
            return trial["step_budget"]
        return min(trial["step_budget"], trial["eval_every"] * math.ceil(steps / trial["eval_every"]))

    def _cap_budgets(self) -> None:
        """Each slot's budget for the next call: with pruning, a trial that has not met the goal
        stops at the study's best step or this round's cap, whichever comes first (on its grid)."""
        if not self.prune_trials:
            return
        for row, index in enumerate(self.slots):
            if index is None:
                continue
            trial = self.trials[index]
            cap = trial["step_budget"]
            if self.outcomes[index].status != REACHED:
                # A trial resumed from a checkpoint past the cap trains one more interval.
                after = self.steps[row] + (0 if self.fresh[row] else 1)
                cap = self._on_grid(trial, max(min(self.best_step, self.round_cap), after))
            self.hyper["budget"][row] = cap

    def _share_and_prune(self) -> None:
        """Learn the study's best step (this job's and, through share_best, other jobs'); prune the
        trials in slots that are at or past it, and set aside those at this round's cap."""
        if not self.prune_trials:
            return
        self.best_step = min(self.best_step, self.share_best(*self.found))
        at_cap = []
        for row, index in enumerate(self.slots):
            if index is None or self.fresh[row]:
                continue
            outcome = self.outcomes[index]
            if prune(outcome, self.best_step):
                self.slots[row] = None
                self._finish(outcome)
            elif outcome.status != REACHED and self.steps[row] >= self._on_grid(self.trials[index], self.round_cap):
                at_cap.append(row)
        for row, state in zip(at_cap, self._states(at_cap)):
            self.set_aside[self.slots[row]] = state
            self.slots[row] = None
        for index, state in list(self.set_aside.items()):
            if prune(state.outcome, self.best_step):
                del self.set_aside[index]
                self._drop_pending(index, state.outcome)
        for index in list(self.pending):  # trials resumed from a checkpoint, not yet in a slot
            state = self.resume.get(self.trials[index].get("trial_id"))
            if state and prune(state.outcome, self.best_step):
                del self.resume[self.trials[index]["trial_id"]]
                self._drop_pending(index, replace(state.outcome, trial=self.trials[index]))

    def _drop_pending(self, index: int, outcome: TrialOutcome) -> None:
        """A trial pruned while waiting for a slot: it is finished where it stopped."""
        if index in self.pending:
            self.pending.remove(index)
        self.outcomes[index] = outcome
        self._finish(outcome)

    def _next_round(self) -> None:
        """Once no trial waits for a first slot, the trials set aside continue, to twice the cap."""
        if self.pending or not self.set_aside:
            return
        self.round_cap *= 2
        self.pending.extend(sorted(self.set_aside))

    def _refill(self) -> None:
        """Put pending trials into free slots: fresh weights from their own seeds and zero optimizer state,
        or, for a trial in `self.resume`, its saved state and step (it skips the step-0 evaluation)."""
        tf, engine = self.tf, self.engine
        self._next_round()
        rows = [row for row, s in enumerate(self.slots) if s is None][: len(self.pending)]
        if not rows:
            self.alive = self.alive & tf.constant([s is not None for s in self.slots])
            return
        resumed: dict[int, TrialState] = {}
        for row in rows:
            index = self.pending.popleft()
            trial = self.trials[index]
            state = self.set_aside.pop(index, None) or self.resume.pop(trial.get("trial_id"), None)
            self.slots[row], self.steps[row], self.fresh[row] = index, state.step if state else 0, state is None
            if state:
                resumed[row] = state
                self.outcomes[index] = replace(state.outcome, trial=trial)
            for key in self.hyper_keys:
                self.hyper[key][row] = self.divergence_factor if key == "divergence_factor" else float(trial[key])
            self.hyper["seed"][row] = trial["seed"]
            self.hyper["eval_every"][row], self.hyper["budget"][row] = trial["eval_every"], trial["step_budget"]
        per_trial = [
            resumed[row].weights
            if row in resumed
            else engine.model.init(self.trials[self.slots[row]]["seed"], engine.input_shape, engine.num_classes)
            for row in rows
        ]
        states = [
            resumed[row].optimizer_state if row in resumed else zero_state(engine.optimizer, weights, np.zeros_like)
            for row, weights in zip(rows, per_trial)
        ]
        at = tf.constant(rows)[:, None]
        self.weights = [
            tf.tensor_scatter_nd_update(w, at, tf.constant(np.stack(new), engine.dtype))
            for w, new in zip(self.weights, zip(*per_trial))
        ]
        self.state = {
            name: [
                tf.tensor_scatter_nd_update(v, at, tf.constant(np.stack(new), engine.dtype))
                for v, new in zip(values, zip(*(state[name] for state in states)))
            ]
            for name, values in self.state.items()
        }
        if resumed:
            limits = tf.constant([state.loss_limit for state in resumed.values()], engine.dtype)
            self.loss_limit = tf.tensor_scatter_nd_update(self.loss_limit, tf.constant(list(resumed))[:, None], limits)
        placed = np.isin(np.arange(len(self.slots)), rows)
        starts_alive = np.array([resumed[row].alive if row in resumed else True for row in range(len(self.slots))])
        self.alive = tf.constant([s is not None for s in self.slots]) & tf.where(
            tf.constant(placed), tf.constant(starts_alive), self.alive
        )

    def _maybe_shrink(self, compiled_sizes) -> None:
        """In the tail, move the remaining trials into a smaller graph when that saves enough work."""
        occupied = [row for row, s in enumerate(self.slots) if s is not None]
        if not occupied or len(occupied) > len(self.slots) // 2:
            return
        # Never down to one slot: XLA compiles a one-slot graph differently, which moves a trial's
        # float64 results in their last bits, and with them, rarely, its steps to result.
        size = max(2, 2 ** math.ceil(math.log2(len(occupied))))
        if size >= len(self.slots):
            return
        remaining = max(self.trials[self.slots[r]]["step_budget"] - self.steps[r] for r in occupied)
        saved_flops = (len(self.slots) - size) * remaining * self.flops_per_trial_step
        if size not in compiled_sizes and saved_flops < SHRINK_WORTH_FLOPS:
            return
        tf = self.tf
        take = occupied + [row for row, s in enumerate(self.slots) if s is None][: size - len(occupied)]
        at = tf.constant(take)
        self.weights = [tf.gather(w, at) for w in self.weights]
        self.state = {name: [tf.gather(v, at) for v in values] for name, values in self.state.items()}
        self.alive = tf.gather(self.alive, at)
        self.loss_limit = tf.gather(self.loss_limit, at)
        self.hyper = {key: value[take] for key, value in self.hyper.items()}
        self.steps, self.fresh = self.steps[take], self.fresh[take]
        self.slots = [self.slots[row] for row in take]


class Progress:
    """Progress and ETA of a tune job, logged at most every `interval` seconds."""

    def __init__(self, label: str, total_trials: int, max_trial_steps: int, interval: float = 10.0):
        self.label, self.total_trials, self.max_trial_steps, self.interval = (
            label,
            total_trials,
            max_trial_steps,
            interval,
        )
        self.start = self.last = time.monotonic()
        self.trial_steps = 0
        self.finished = dict.fromkeys(STATUSES, 0)

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
            "%s: %d/%d trials done (%d reached, %d infeasible, %d pruned), group at step %d/%d with %d active, "
            "%.0f trial-steps/s, ETA <= %s",
            self.label,
            done,
            self.total_trials,
            self.finished[REACHED],
            self.finished[INFEASIBLE],
            self.finished[PRUNED],
            step,
            budget,
            active,
            rate,
            _duration(remaining / rate if rate else math.inf),
        )


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
