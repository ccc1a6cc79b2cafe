"""Mid-trial checkpoints: a tune job killed part-way through a trial resumes it where it stopped.

Each in-flight trial has a folder beside its partial file, `trial_00007.checkpoint/`, with one
folder per save, `step_000001200/`: a tf.train.Checkpoint of the trial's tensors (weights, its
optimizer's state by slot name, e.g. Adam's two moment estimates, alive flag, divergence limit,
step: Adam's bias correction counts it) and, written last and atomically, `state.json` with
the trial's fingerprint and its outcome so far (curve rows, status, best metric and step). A save
is complete once its state.json exists; only then are older saves removed. A folder without one
was cut short (SIGKILL, node loss) and is removed; one that does not restore is ignored with a
warning. A checkpoint is per trial, so a resumed trial may land in any graph, slot or shard.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from batch_science.io import atomic_write, fsync
from batch_science.trials import TrialOutcome, TrialState

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
TENSORS_PREFIX = "tensors"


def _tensors(tf, weights, optimizer_state, alive, loss_limit, step, dtype):
    return tf.train.Checkpoint(
        weights=[tf.Variable(w, dtype=dtype) for w in weights],
        optimizer_state={
            name: [tf.Variable(v, dtype=dtype) for v in values] for name, values in optimizer_state.items()
        },
        alive=tf.Variable(alive, dtype=tf.bool),
        loss_limit=tf.Variable(loss_limit, dtype=tf.float64),
        step=tf.Variable(step, dtype=tf.int64),
    )


def save(folder: Path, state: TrialState, fingerprint: str) -> None:
    """Write `state` as a new complete save in `folder`, then remove the older saves."""
    import tensorflow as tf

    target = folder / f"step_{state.step:09d}"
    if (target / STATE_FILE).exists():  # saved at this step already: the same state
        return
    shutil.rmtree(target, ignore_errors=True)  # a save of this step cut short earlier
    target.mkdir(parents=True)
    fsync(folder)
    _tensors(
        tf, state.weights, state.optimizer_state, state.alive, state.loss_limit, state.step, state.weights[0].dtype
    ).write(str(target / TENSORS_PREFIX))
    for path in target.iterdir():
        fsync(path)
    outcome = state.outcome
    record = {
        "fingerprint": fingerprint,
        "step": state.step,
        "outcome": {
            key: getattr(outcome, key)
            for key in ("status", "steps_to_result", "best_metric", "best_step", "final_step", "curve")
        },
    }
    atomic_write(target / STATE_FILE, lambda tmp: Path(tmp).write_text(json.dumps(record)))
    for older in folder.glob("step_*"):
        if older != target:
            shutil.rmtree(older, ignore_errors=True)


def load(
    folder: Path, fingerprint: str, like_weights: list[np.ndarray], dtype, state_slots: tuple[str, ...]
) -> TrialState | None:
    """The newest complete save in `folder` made with these settings, or None.

    `like_weights` gives the shapes of a trial's weights, `dtype` their TensorFlow type,
    `state_slots` the names of its optimizer's state (optimizers.STATE). Saves cut
    short, made with other settings or unreadable are removed, each with a log line.
    """
    import tensorflow as tf

    for save_dir in sorted(folder.glob("step_*"), reverse=True):
        state = None
        if not (save_dir / STATE_FILE).exists():
            log.warning("%s: a checkpoint cut short by a killed job, removing it", save_dir)
        else:
            try:
                record = json.loads((save_dir / STATE_FILE).read_text())
                if record["fingerprint"] != fingerprint:
                    log.warning("%s: made with other settings, ignoring it", save_dir)
                else:
                    zeros = [np.zeros(w.shape) for w in like_weights]
                    tensors = _tensors(tf, zeros, dict.fromkeys(state_slots, zeros), False, 0.0, 0, dtype)
                    tensors.read(str(save_dir / TENSORS_PREFIX)).assert_consumed()
                    if int(tensors.step.numpy()) != record["step"]:
                        raise ValueError(
                            f"its tensors are at step {int(tensors.step.numpy())}, its state at {record['step']}"
                        )
                    state = TrialState(
                        TrialOutcome(trial={}, **record["outcome"]),
                        record["step"],
                        [w.numpy() for w in tensors.weights],
                        {name: [v.numpy() for v in values] for name, values in tensors.optimizer_state.items()},
                        bool(tensors.alive.numpy()),
                        float(tensors.loss_limit.numpy()),
                    )
            except Exception as error:  # truncated, edited or from another TensorFlow: train afresh rather than fail
                log.warning("%s: unreadable checkpoint (%s), ignoring it", save_dir, " ".join(str(error).split())[:300])
        if state:
            remove(folder, keep=save_dir)
            return state
        shutil.rmtree(save_dir, ignore_errors=True)
    remove(folder)
    return None


def remove(folder: Path, keep: Path | None = None) -> None:
    """Delete a trial's saves (all but `keep`): a finished trial's partial file supersedes them."""
    if keep is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for save_dir in folder.glob("step_*"):
        if save_dir != keep:
            shutil.rmtree(save_dir, ignore_errors=True)
