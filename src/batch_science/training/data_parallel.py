"""One trial trained data-parallel across the devices of a node (tf.distribute.MirroredStrategy), or
across nodes (MultiWorkerMirroredStrategy with TensorFlow's SlurmClusterResolver), for batch sizes
too large for one device.

Data parallelism changes where a step is computed, not what it computes: step s draws the same
global batch as the one-device engine (the engine's counter-based batch indices of the trial's
seed), each of the N replicas takes a contiguous 1/N of it, computes the mean loss gradient of its
slice, and the all-reduced mean over replicas is the gradient of the whole batch. The update
(learning-rate schedule, momentum, Nesterov, Adam) and the evaluation are the engine's. So a trial gives
the same curve and steps to result on N devices as on one, up to floating-point summation order.

The multi-trial engine (engine.py) stays the fast path for the many small trials of a study; this
module is for the few trials whose batch needs several accelerators: tune jobs of studies from the
config's data_parallel.min_batch_size on (tuning/tune_job.py; docs/cluster.md). Across nodes,
srun starts one worker per node (tuning/launcher.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np

from batch_science.training.device import use_logical_cpus
from batch_science.training.engine import Engine, batch_indices, per_trial
from batch_science.training.optimizers import step_scalars, update_weights, zero_state
from batch_science.training.runner import Progress
from batch_science.trials import Target, TrialOutcome, metaparameter_keys, observe


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
    return resolvers.SimpleClusterResolver(
        cluster, task_type=task_type, task_id=task_id, num_accelerators={}, rpc_layer="grpc"
    )


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
        raise RuntimeError(
            f"data_parallel.devices: {spec['devices']} GPUs asked for, {len(gpus)} visible (CUDA_VISIBLE_DEVICES)"
        )
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

    def _make_step(self, weights, state, hyper):
        tf, engine, strategy = self.tf, self.engine, self.strategy
        n_examples = engine.x_train.shape[0]
        per_replica = engine.batch_size // self.replicas

        def replica_gradients(step):
            context = tf.distribute.get_replica_context()
            index = batch_indices(tf, hyper["seed"], tf.reshape(step, [1]), engine.batch_size, n_examples)[0]
            start = context.replica_id_in_sync_group * per_replica
            mine = index[start : start + per_replica]
            x, y = tf.gather(engine.x_train, mine), tf.gather(engine.y_train, mine)
            current = [tf.identity(w) for w in weights]
            with tf.GradientTape() as tape:
                tape.watch(current)
                loss = engine.loss(
                    engine.model.apply(current, x[None], shared=False), y[None], hyper["label_smoothing"]
                )
                total = tf.reduce_sum(loss)
            grads = tape.gradient(total, current)
            mean = tf.distribute.ReduceOp.MEAN
            return context.all_reduce(mean, grads), context.all_reduce(mean, loss)

        def train_step(step):
            grads, loss = strategy.run(replica_gradients, args=(step,))
            grads = [strategy.experimental_local_results(g)[0] for g in grads]
            loss = strategy.experimental_local_results(loss)[0]
            alive = tf.reduce_all(tf.math.is_finite(loss) & (loss < hyper["loss_limit"]))
            scalars = step_scalars(engine.optimizer, hyper, tf.cast(step, engine.dtype), xp=tf)
            new_weights, new_state = update_weights(
                engine.optimizer, weights, state, grads, scalars, lambda value, w: per_trial(tf, value, w), tf
            )
            for variables, values in [(weights, new_weights), *((state[name], new_state[name]) for name in state)]:
                for variable, value in zip(variables, values):
                    variable.assign(tf.where(alive, value, variable))
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
        self,
        trial: dict,
        target: Target,
        divergence_factor: float = 100.0,
        stop_at_target: bool = True,
        progress: Progress | None = None,
    ) -> TrialOutcome:
        """Same contract as Engine.run for one trial: its outcome with the curve at every evaluation."""
        tf, engine = self.tf, self.engine
        # One trial: its weights with a trial axis of one, as the engine builds them from its seed.
        initial = [
            tf.constant(w[None], engine.dtype)
            for w in engine.model.init(trial["seed"], engine.input_shape, engine.num_classes)
        ]
        hyper = {key: tf.constant([float(trial[key])], engine.dtype) for key in metaparameter_keys(engine.optimizer)}
        hyper["seed"] = tf.constant([trial["seed"]], tf.int64)
        with self.strategy.scope():
            weights = [tf.Variable(w) for w in initial]
            state = zero_state(engine.optimizer, initial, lambda w: tf.Variable(tf.zeros_like(w)))
        initial_loss, _ = engine.evaluate([w.read_value() for w in weights])
        hyper["loss_limit"] = engine.divergence_limit(divergence_factor, initial_loss)
        train_step = self._make_step(weights, state, hyper)

        budget, eval_every = trial["step_budget"], trial["eval_every"]
        outcome = TrialOutcome(trial)
        step, train_loss, alive = 0, math.nan, True
        while True:
            val_loss, val_error = (float(t.numpy()[0]) for t in engine.evaluate([w.read_value() for w in weights]))
            metrics = {"train_cross_entropy": train_loss, "val_cross_entropy": val_loss, "val_error": val_error}
            if observe(outcome, target, step, metrics, alive, stop_at_target):
                return outcome
            losses, started, interval_end = [], step, min(step + eval_every, budget)
            while step < interval_end and alive:
                loss, still_alive = train_step(tf.constant(step, tf.int32))
                alive = bool(still_alive.numpy())
                if alive:  # the step that diverged is not taken, nor counted in the training loss
                    losses.append(float(loss.numpy()[0]))
                step += 1
            if progress:
                progress.advanced(step - started, step, budget, 1)
            # As in the engine: a diverged trial is marked at the evaluation that closes its interval.
            step, train_loss = interval_end, float(np.mean(losses)) if losses else math.nan
