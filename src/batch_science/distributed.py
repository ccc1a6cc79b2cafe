"""One trial trained data-parallel across the devices of a node (tf.distribute.MirroredStrategy), or
across nodes (MultiWorkerMirroredStrategy with TensorFlow's SlurmClusterResolver), for batch sizes
too large for one device.

Data parallelism changes where a step is computed, not what it computes: step s draws the same
global batch as the one-device engine (the engine's counter-based batch indices of the trial's
seed), each of the N replicas takes a contiguous 1/N of it, computes the mean loss gradient of its
slice, and the all-reduced mean over replicas is the gradient of the whole batch. The update
(learning-rate schedule, momentum, Nesterov) and the evaluation are the engine's. So a trial gives
the same curve and steps to result on N devices as on one, up to floating-point summation order.

The multi-trial engine (engine.py) stays the fast path for the many small trials of a study; this
module is for the few trials whose batch needs several accelerators: tune jobs of studies from the
config's data_parallel.min_batch_size on (tune.py; docs/cluster.md). Across nodes, srun starts
one worker per node (run_across_nodes, `python -m batch_science.distributed JOB.json`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from batch_science.engine import INFEASIBLE, NOT_REACHED, REACHED, Engine, Progress, Target, TrialOutcome, _batch_indices


def use_logical_cpus(count: int) -> list[str]:
    """Split the host CPU into `count` logical devices (for tests without GPUs); call before TensorFlow starts."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def strategy_for(devices: list[str] | None = None, across_slurm_nodes: bool = False, port: int = 8888):
    """MirroredStrategy over `devices` (default: every GPU of this node, else the CPU), or, inside a
    multi-node SLURM job step, MultiWorkerMirroredStrategy with one worker per SLURM task (its
    address from SLURM_PROCID, SLURM_STEP_NODELIST, SLURM_STEP_TASKS_PER_NODE; the first on `port`).

    A worker keeps the GPUs SLURM gave it (CUDA_VISIBLE_DEVICES untouched); without GPUs it trains
    on its CPU, one replica per worker."""
    import tensorflow as tf

    if across_slurm_nodes:
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=_slurm_resolver(tf, port))
    return tf.distribute.MirroredStrategy(devices)


def _slurm_resolver(tf, port: int):
    """SlurmClusterResolver, also on hosts without GPUs, where it cannot lay out tasks by itself."""
    resolvers = tf.distribute.cluster_resolver
    gpus = len(tf.config.list_physical_devices("GPU"))
    if gpus:
        return resolvers.SlurmClusterResolver(port_base=port, gpus_per_node=gpus, auto_set_gpu=False)
    # It places tasks on a node by their GPUs (zero GPUs: no task, or a division by zero): give it
    # one placeholder GPU per task, take its addresses, and let the workers train on their CPUs.
    slurm = resolvers.SlurmClusterResolver(
        port_base=port, gpus_per_node=int(os.environ["SLURM_STEP_NUM_TASKS"]), gpus_per_task=1, auto_set_gpu=False
    )
    cluster = slurm.cluster_spec()
    task_type, task_id = slurm.get_task_info()
    return resolvers.SimpleClusterResolver(cluster, task_type=task_type, task_id=task_id, num_accelerators={}, rpc_layer="grpc")


def strategy_for_study(spec: dict):
    """The strategy of a data-parallel tune job from its config's data_parallel block.

    Call before TensorFlow starts: it may split the CPU into logical devices (a host without GPUs)
    or join the other workers (nodes above 1).
    """
    import tensorflow as tf

    if spec["nodes"] > 1:
        return strategy_for(across_slurm_nodes=True, port=spec["port"])
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return strategy_for(use_logical_cpus(spec["devices"]))
    if len(gpus) < spec["devices"]:
        raise RuntimeError(f"data_parallel.devices: {spec['devices']} GPUs asked for, {len(gpus)} visible (CUDA_VISIBLE_DEVICES)")
    return strategy_for([f"/gpu:{i}" for i in range(spec["devices"])])


def writes_results(strategy) -> bool:
    """Whether this process writes the trials: every worker trains the same steps, the first one saves."""
    resolver = strategy.cluster_resolver
    return resolver is None or resolver.task_id == 0


class DataParallelTrial:
    """Train one trial with its global batch split over the replicas of `strategy`."""

    def __init__(self, engine: Engine, strategy):
        import tensorflow as tf

        self.tf, self.engine, self.strategy = tf, engine, strategy
        self.replicas = strategy.num_replicas_in_sync
        if engine.batch_size % self.replicas:
            raise ValueError(f"batch size {engine.batch_size}: not divisible by the {self.replicas} replicas")

    def _make_step(self, weights, velocity, hyper):
        tf, engine, strategy = self.tf, self.engine, self.strategy
        n_examples = engine.x_train.shape[0]
        per_replica = engine.batch_size // self.replicas

        def replica_gradients(step):
            context = tf.distribute.get_replica_context()
            index = _batch_indices(tf, hyper["seed"], tf.reshape(step, [1]), engine.batch_size, n_examples)[0]
            start = context.replica_id_in_sync_group * per_replica
            mine = index[start : start + per_replica]
            x, y = tf.gather(engine.x_train, mine), tf.gather(engine.y_train, mine)
            current = [tf.identity(w) for w in weights]
            with tf.GradientTape() as tape:
                tape.watch(current)
                loss = engine._loss(engine.model.apply(current, x[None], shared=False), y[None], hyper["label_smoothing"])
                total = tf.reduce_sum(loss)
            grads = tape.gradient(total, current)
            mean = tf.distribute.ReduceOp.MEAN
            return context.all_reduce(mean, grads), context.all_reduce(mean, loss)

        def train_step(step):
            grads, loss = strategy.run(replica_gradients, args=(step,))
            grads = [strategy.experimental_local_results(g)[0] for g in grads]
            loss = strategy.experimental_local_results(loss)[0]
            decay = tf.maximum(hyper["decay_steps"], 1.0)
            progress = tf.minimum(tf.cast(step, engine.dtype), decay) / decay
            rate = hyper["learning_rate"] * tf.where(
                hyper["decay_steps"] > 0, 1 - (1 - hyper["end_factor"]) * progress, tf.ones_like(progress)
            )
            alive = tf.reduce_all(tf.math.is_finite(loss) & (loss < hyper["loss_limit"]))
            for w, v, g in zip(weights, velocity, grads):
                lr, m = (tf.reshape(t, [-1] + [1] * (len(w.shape) - 1)) for t in (rate, hyper["momentum"]))
                if engine.optimizer == "sgd":
                    v_next, w_next = v, w - lr * g
                else:
                    v_next = m * v + g
                    w_next = w - lr * (g + m * v_next if engine.optimizer == "nesterov" else v_next)
                v.assign(tf.where(alive, v_next, v))
                w.assign(tf.where(alive, w_next, w))
            return loss, alive

        return tf.function(train_step)

    def run_trials(
        self,
        trials: list[dict],
        target: Target,
        *,
        divergence_factor: float = 100.0,
        stop_at_target: bool = True,
        group_size: int | None = None,
        on_finish: Callable[[TrialOutcome], None] = lambda outcome: None,
        progress: Progress | None = None,
    ) -> list[TrialOutcome]:
        """Engine.run's contract, one trial after another (so `group_size` has no use here): outcomes
        in trial order, each reported to `on_finish` (on the worker that writes results) and
        `progress` as soon as it finishes."""
        writes = writes_results(self.strategy)
        outcomes = []
        for trial in trials:
            outcome = self.run(trial, target, divergence_factor, stop_at_target, progress)
            if writes:
                on_finish(outcome)
            if progress:
                progress.trial_finished(outcome)
            outcomes.append(outcome)
        return outcomes

    def run(
        self, trial: dict, target: Target, divergence_factor: float = 100.0, stop_at_target: bool = True, progress: Progress | None = None
    ) -> TrialOutcome:
        """Same contract as Engine.run for one trial: its outcome with the curve at every evaluation."""
        tf, engine = self.tf, self.engine
        # One trial: its weights with a trial axis of one, as the engine builds them from its seed.
        initial = [tf.constant(w[None], engine.dtype) for w in engine.model.init(trial["seed"], engine.input_shape, engine.num_classes)]
        hyper = {key: tf.constant([float(trial[key])], engine.dtype) for key in ("learning_rate", "momentum", "decay_steps", "end_factor", "label_smoothing")}
        hyper["seed"] = tf.constant([trial["seed"]], tf.int64)
        with self.strategy.scope():
            weights = [tf.Variable(w) for w in initial]
            velocity = [tf.Variable(tf.zeros_like(w)) for w in initial]
        initial_loss, _ = engine.evaluate([w.read_value() for w in weights])
        hyper["loss_limit"] = divergence_factor * tf.maximum(initial_loss, math.log(engine.num_classes))
        train_step = self._make_step(weights, velocity, hyper)

        budget, eval_every = trial["step_budget"], trial["eval_every"]
        outcome = TrialOutcome(trial, NOT_REACHED, math.nan, math.nan, 0, 0)
        step, train_loss, alive = 0, math.nan, True
        while True:
            val_loss, val_error = (float(t.numpy()[0]) for t in engine.evaluate([w.read_value() for w in weights]))
            metric = val_error if target.metric == "error" else val_loss
            outcome.final_step = step
            outcome.curve.append({"step": step, "train_cross_entropy": train_loss, "val_cross_entropy": val_loss, "val_error": val_error})
            if not alive or not math.isfinite(val_loss):
                outcome.status, outcome.steps_to_result = INFEASIBLE, math.nan
            elif target.met(metric) and outcome.status != REACHED:
                outcome.status, outcome.steps_to_result = REACHED, float(step)
            if outcome.status != INFEASIBLE and math.isfinite(metric) and not (
                math.isfinite(outcome.best_metric) and not _better(metric, outcome.best_metric, target)
            ):
                outcome.best_metric, outcome.best_step = metric, step
            if outcome.status == INFEASIBLE or step >= budget or (stop_at_target and outcome.status == REACHED):
                return outcome
            losses = []
            for _ in range(min(eval_every, budget - step)):
                loss, still_alive = train_step(tf.constant(step, tf.int32))
                alive = bool(still_alive.numpy())
                losses.append(float(loss.numpy()[0]))
                step += 1
                if not alive:
                    break
            train_loss = float(np.mean(losses))
            if progress:
                progress.advanced(len(losses), step, budget, 1)


def _better(value: float, best: float, target: Target) -> bool:
    return value < best if target.direction == "minimize" else value > best


def run_across_nodes(nodes: int, **job) -> None:
    """A tune job spread over `nodes` nodes: srun starts one worker task per node in the job's
    allocation, each runs run_tune_job(**job) with MultiWorkerMirroredStrategy, the first writes.

    --overlap: the tune job's own step already holds the first node's CPUs and GPUs, which its
    worker needs too. SLURM signals every task on scancel or the time limit (SIGTERM), so the
    workers stop together and the finished trials stay in the partial folder.
    """
    job = {**job, "study": dataclasses.asdict(job["study"])}
    Path(job["partial_dir"]).mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=job["partial_dir"], prefix=".job.", suffix=".json") as spec:
        json.dump(job, spec)
        spec.flush()
        command = [
            "srun", "--overlap", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
            sys.executable, "-m", "batch_science.distributed", spec.name,
        ]
        logging.getLogger(__name__).info("starting the workers: %s", " ".join(command))
        returncode = subprocess.run(command).returncode
    if returncode:
        raise SystemExit(returncode)


def main(job_path: str) -> None:
    """One worker of a multi-node tune job (see run_across_nodes): `python -m batch_science.distributed JOB.json`."""
    from batch_science.config import Study
    from batch_science.tune import run_tune_job

    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format=f"%(asctime)s %(levelname)s worker {os.environ.get('SLURM_PROCID', '?')}: %(message)s"
    )
    with open(job_path) as f:
        job = json.load(f)
    run_tune_job(**{**job, "study": Study(**job["study"])})


if __name__ == "__main__":
    main(sys.argv[1])
