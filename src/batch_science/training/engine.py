"""The multi-trial training engine: many trials of one study trained together in compiled graphs.

Each trial has its own weights (a leading trial axis on every tensor), learning rate, momentum,
schedule, label smoothing, divergence limit and batch stream. A graph holds a fixed number of
trial slots; one compiled call trains every slot for an evaluation interval and then evaluates
all of them on the validation set kept on the device, repeating for as many intervals as make the
call worth its dispatch (CALL_FLOPS; one interval at small batch, several at large batch, where
evaluation comes every few steps). The call itself stops a slot whose trial diverged, met the
goal or spent its budget. Python runs once per call: to record curves, confirm which trials have
finished and put the next pending trial into a freed slot (each slot keeps its own step counter,
so slots need not be in step). Refilling keeps the graph's shape, so it is never recompiled while
trials are pending; only in the tail, when the slots empty, is the graph shrunk (to a power of
two) if the work it saves is worth a compilation.

A trial's batches and initial weights depend only on its own seed, and no computation mixes
trials, so its results do not depend on which trials share its graph: exactly so in float64; in
float32 XLA may round a trial's sums differently for other graph shapes, which over thousands of
steps can move a result by an evaluation interval.

A model whose `max_trials_per_graph` is 1 (one that cannot carry a trial axis) gets one slot: each
trial is still one compiled loop, with no Python per step, and the graph is reused trial after trial.

A dataset too large for the device is streamed (training/streaming_engine.py): the same compiled
training steps take their batches, read on the host at the same indices (`host_batch_indices`),
a chunk of steps at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from batch_science.training.device import core_cache_bytes
from batch_science.training.optimizers import STATE, check_optimizer, step_scalars, update_weights
from batch_science.training.runner import MAX_INTERVALS_PER_CALL, Progress, SlotRunner
from batch_science.trials import Target, TrialOutcome, TrialState, strictly_better

# Training FLOPs per compiled step worth batching trials up to: beyond it one step's matrix
# multiplies are large enough to run near the machine's peak, so more trials per graph only add
# memory. Measured on the MNIST-1D MLP: 64 trials at batch 16 (~9e7) still gain over 32.
AUTO_GROUP_FLOPS = 2**27
MAX_GROUP = 64
# Weights, velocities and per-step activations of one graph stay within this many bytes. On a
# CPU they also stay within one core's L2 cache: every training step streams through all slots'
# weights, velocities and gradients several times, and once they spill to L3 each step waits on
# memory. Measured on the MNIST-1D MLP at batch 16 on one core with 2 MiB of L2 (~220 KiB per
# slot): 4 or 8 slots 29k trial-steps/s, 16 slots 24k, 64 slots 21k.
AUTO_GROUP_BYTES = 2**30
HASH_MULTIPLIERS = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D)
HASH_ROUNDS = ((16, 0x7FEB352D), (15, 0x846CA68B))  # (shift, multiplier) of the hash's mixing rounds
# Training examples whose batch-norm statistics normalise every evaluation (precise BN, models/paper.py):
# at most this many, evenly spaced through the training set, the same for every trial and evaluation.
BATCH_NORM_EXAMPLES = 1024
# TensorFlow ops of a convolution. Their gradients, inside the engine's training loop, are what
# XLA compiles badly on a CPU (see compiles_with_xla).
CONVOLUTION_OPS = frozenset({"Conv", "Conv2D", "Conv3D", "DepthwiseConv2dNative"})
# Ops of a loop inside the forward pass (a recurrence, tf.scan), and the batch size from which a
# model running one trains faster on a CPU as a plain graph (see compiles_with_xla).
LOOP_OPS = frozenset({"While", "StatelessWhile"})
LOOP_PLAIN_GRAPH_BATCH = 128


def compiles_with_xla(training_op_types: set[str], on_gpu: bool, batch_size: int) -> bool:
    """Whether the engine's loops are compiled with XLA (else as a plain TensorFlow graph), from
    the ops of a model's training forward pass, the device and the batch size.

    XLA, except on a CPU for a model that convolves, and for one that loops (an LSTM's recurrence)
    at a batch of LOOP_PLAIN_GRAPH_BATCH or more. Convolutions: inside the graph's training loop
    (a tf.while_loop), XLA's CPU backend leaves the gradient convolutions in a dimension order its
    Eigen convolution cannot take and emits them as naive loops: the Simple CNN (28x28x1, batch
    128) trained 0.26 trial-steps/s, against 19 as a plain graph, whose convolutions run in oneDNN.
    Recurrences: the 2x128 LSTM language model on one core trained 1.18x faster under XLA at batch
    64, as fast at 128 and 1.3x slower at 256 (XLA's fusion pays while the recurrence's products
    are small). MLPs, the 1-D CNN (matmuls of patches) and the Transformer gain from XLA's fusion.
    `make bench` measures both compilations of every paper model (results/bench/paper_models.csv).
    """
    if on_gpu:
        return True
    if training_op_types & CONVOLUTION_OPS:
        return False
    return not (training_op_types & LOOP_OPS and batch_size >= LOOP_PLAIN_GRAPH_BATCH)


def auto_group_size(
    flops_per_example: int,
    batch_size: int,
    n_trials: int,
    bytes_per_trial: int = 0,
    max_trials_per_graph: int | None = None,
    cache_bytes: int | None = None,
) -> int:
    """Trials per graph: enough to amortise per-step overhead, no more than one graph's worth of
    work, memory, and on a CPU cache.

    `flops_per_example` is the forward pass; `bytes_per_trial` what one slot holds (weights,
    optimizer state, gradients, activations of a batch); `max_trials_per_graph` the model's own limit;
    `cache_bytes` the cache of the core that runs the graph (None on an accelerator).
    """
    group = AUTO_GROUP_FLOPS // max(1, 3 * flops_per_example * batch_size)
    if bytes_per_trial:
        group = min(group, AUTO_GROUP_BYTES // bytes_per_trial)
        if cache_bytes:
            group = min(group, cache_bytes // bytes_per_trial)
    group = 2 ** int(math.log2(group)) if group >= 1 else 1
    return int(max(1, min(group, MAX_GROUP, max_trials_per_graph or MAX_GROUP, n_trials)))


def batch_indices(tf, seeds, steps, batch_size: int, n_examples: int):
    """Per-trial minibatch indices from a counter-based hash of (trial seed, step, slot).

    Sampling is with replacement, i.i.d. per step; it needs no state, so a trial's batches are
    the same whichever trials share its graph, whichever slot it is in and wherever it resumes.
    uint32 arithmetic wraps exactly as the hash wants (no masking) and is half the work of int64.
    """
    bits = tf.bitwise
    seed_mult, step_mult, slot_mult = HASH_MULTIPLIERS
    slot_term = tf.constant((np.arange(batch_size, dtype=np.uint64) * slot_mult).astype(np.uint32))  # wraps mod 2**32
    x = tf.cast(seeds, tf.uint32)[:, None] * tf.constant(seed_mult, tf.uint32)
    x = x + tf.cast(steps, tf.uint32)[:, None] * tf.constant(step_mult, tf.uint32) + slot_term[None, :]
    for shift, multiplier in HASH_ROUNDS:
        x = bits.bitwise_xor(x, bits.right_shift(x, tf.constant(shift, tf.uint32))) * tf.constant(multiplier, tf.uint32)
    x = bits.bitwise_xor(x, bits.right_shift(x, tf.constant(16, tf.uint32)))
    return tf.cast(x % tf.constant(n_examples, tf.uint32), tf.int32)


def host_batch_indices(seeds, steps, batch_size: int, n_examples: int) -> np.ndarray:
    """`batch_indices` in numpy, for reading a streamed dataset's batches on the host: [len(seeds), batch_size]."""
    seed_mult, step_mult, slot_mult = (np.uint32(m) for m in HASH_MULTIPLIERS)
    with np.errstate(over="ignore"):  # uint32 wraps, as in the TensorFlow version
        x = (
            np.asarray(seeds).astype(np.uint32)[:, None] * seed_mult
            + np.asarray(steps).astype(np.uint32)[:, None] * step_mult
        )
        x = x + np.arange(batch_size, dtype=np.uint32)[None, :] * slot_mult
        for shift, multiplier in HASH_ROUNDS:
            x = (x ^ (x >> np.uint32(shift))) * np.uint32(multiplier)
    x = x ^ (x >> np.uint32(16))
    return (x.astype(np.int64) % n_examples).astype(np.int32)


# Validation chunks evaluated one after another in the compiled graph; more run in a graph loop.
UNROLLED_EVAL_CHUNKS = 8


def batch_norm_sample_size(eval_every: int, batch_size: int) -> int:
    """Training examples whose batch-norm statistics normalise each evaluation: BATCH_NORM_EXAMPLES,
    but no more than a trial trains on between two evaluations, so that measuring them (one forward
    pass each) costs at most a third of that training. Evaluating ResNet-8 every 20 steps at batch
    16 with 1024 examples spent more on the statistics than on training; a study evaluating once an
    epoch (config/paper.yaml) uses all 1024."""
    return max(1, min(BATCH_NORM_EXAMPLES, eval_every * batch_size))


def batch_norm_sample(n_train: int, size: int = BATCH_NORM_EXAMPLES) -> np.ndarray:
    """Positions of the `size` training examples (at most) whose batch-norm statistics normalise every evaluation."""
    return np.arange(0, n_train, max(1, n_train // size))[:size]


def exact_divisor(tf, count: int, dtype):
    """`count` as a divisor the compiler cannot fold: XLA turns division by a constant into
    multiplication by its reciprocal, an ulp below the exact quotient for some counts (5 wrong of 7
    gave 0.7142857142857142 < 5/7), and an error equal to the goal then counted as met."""
    return tf.Variable(float(count), dtype=dtype, trainable=False)


def per_trial(tf, values, like):
    """Broadcast a [trials] vector against a [trials, ...] tensor."""
    return tf.reshape(values, [-1] + [1] * (len(like.shape) - 1))


class Engine:
    """Compiled train/evaluate functions for one (model, data, optimizer, batch size)."""

    def __init__(
        self,
        model,
        arrays,
        optimizer: str,
        batch_size: int,
        precision: str = "float32",
        eval_batch_size: int = 8192,
        jit_compile: bool | None = None,
        batch_norm_sample_size: int = BATCH_NORM_EXAMPLES,
    ):
        """`jit_compile`: compile the loops with XLA (True) or as a plain graph (False); None decides
        by `compiles_with_xla` for this model, device and batch size. `batch_norm_sample_size`: the
        training examples that normalise a batch-norm model's evaluations (see batch_norm_sample_size)."""
        import tensorflow as tf

        self.tf, self.model, self.optimizer, self.batch_size = tf, model, check_optimizer(optimizer), batch_size
        self.dtype = tf.float64 if precision == "float64" else tf.float32
        self.num_classes = arrays.num_classes
        self.hold_data(arrays)
        self.eval_batch_size = eval_batch_size
        self.batch_norm_sample_size = batch_norm_sample_size
        self.augment = arrays.augment
        on_gpu = bool(tf.config.list_logical_devices("GPU"))
        self.jit_compile = (
            compiles_with_xla(self.training_op_types(), on_gpu, batch_size) if jit_compile is None else jit_compile
        )
        self.loss_and_gradients = self.step_function(self.loss_and_gradients_graph)
        self.intervals = self.compiled(self.intervals_graph)
        self.evaluate = self.compiled(self.evaluate_graph)
        if hasattr(model, "build_for"):  # a Keras model learns on these inputs whether its layers vectorise
            model.build_for(self.input_shape, self.num_classes)
        self.max_trials_per_graph = getattr(model, "max_trials_per_graph", None)
        # Filled by run(): where the wall time went, for the benchmark and the job log.
        self.stats = {
            "calls": 0,
            "first_call_s": 0.0,
            "call_s": 0.0,
            "host_s": 0.0,
            "graph_sizes": [],
            "trial_steps": 0,
            "slot_steps": 0,
        }
        self.compiled_sizes: set[int] = set()  # graph sizes already compiled: reused across runs

    def compiled(self, function):
        """`function` (one of the `*_graph` methods, which build ops) as one compiled graph: XLA or
        a plain graph, as `self.jit_compile` says.

        Without autograph: the graphs loop with explicit tf.while_loop and branch only on Python
        values, and autograph's conversion of every function they call cost ~2.5 s of each job's
        start-up."""
        return self.tf.function(function, jit_compile=self.jit_compile, autograph=False)

    def step_function(self, function):
        """`function`, the forward and backward pass of a training step, as the loops call it: under
        XLA inlined; in a plain graph as a function graph of its own, not inlined into the loops.

        oneDNN's graph rewrite, which gives TensorFlow's CPU ops their fast kernels, turns a max
        pool's gradient into its own kernel only when it has rewritten the forward pool first, and
        it walks a graph in an order that, around a loop, is not always the data's and changes from
        one process to the next. Inlined into the engine's loops, the Simple CNN's pool gradients ran
        Eigen's kernel in four processes of five, 15% of each step at batch 256: the bench's noise
        between runs. A function graph of its own has no loop, so the forward pool always comes first."""
        if self.jit_compile:
            return function
        return self.tf.function(function, autograph=False, experimental_attributes={"_noinline": True})

    def training_op_types(self) -> set[str]:
        """The TensorFlow op types of the model's training forward pass (one trial, two examples) and
        of the functions it calls, traced, not run."""
        tf = self.tf
        weights = [
            tf.TensorSpec([1, *w.shape], self.dtype) for w in self.model.init(0, self.input_shape, self.num_classes)
        ]
        x = tf.TensorSpec([1, 2, *self.input_shape], self.dtype)
        forward = tf.function(lambda weights, x: self.model.apply(weights, x, shared=False), autograph=False)
        graph = forward.get_concrete_function(weights, x).graph.as_graph_def()
        # With the functions it calls: loop bodies (tf.while_loop, tf.scan) are functions of their own.
        nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
        return {node.op for node in nodes}

    def hold_data(self, arrays) -> None:
        """Keep the training and validation sets on the device (StreamingEngine reads them from disk instead)."""
        tf = self.tf
        self.input_shape = arrays.x_train.shape[1:]
        self.x_train = tf.constant(arrays.x_train, self.dtype)
        self.y_train = tf.constant(arrays.y_train, tf.int32)
        self.x_validation = tf.constant(arrays.x_validation, self.dtype)
        self.y_validation = tf.constant(arrays.y_validation, tf.int32)
        self.validation_count = exact_divisor(tf, arrays.y_validation.size, self.dtype)  # examples x tokens

    # -- compiled pieces -------------------------------------------------------------------
    def loss(self, logits, labels, label_smoothing):
        """Label-smoothed cross-entropy per trial: the mean over examples and, for language models
        (labels [trials, batch, length]), over every token."""
        tf = self.tf
        log_probs = tf.nn.log_softmax(logits)
        true_class = -tf.reduce_sum(tf.one_hot(labels, self.num_classes, dtype=logits.dtype) * log_probs, axis=-1)
        uniform = -tf.reduce_mean(log_probs, axis=-1)
        smoothing = per_trial(tf, label_smoothing, true_class)
        return tf.reduce_mean(
            (1 - smoothing) * true_class + smoothing * uniform, axis=list(range(1, len(true_class.shape)))
        )  # [trials]

    def intervals_graph(self, weights, state, alive, loss_limit, hyper, steps, fresh, done, stop, n_intervals):
        """Up to `n_intervals` evaluation intervals of every slot, each closed by its validation metrics.

        Slot r trains min(eval_every, budget - step) steps per interval from steps[r], then every
        slot is evaluated. A slot is `done` once it diverged, met the target (when `stop` holds) or
        spent its budget, decided here exactly as the host's bookkeeping decides it (metric and
        goal compared in float64); from then on it neither trains nor records, and the call ends
        early once every slot is done. Slots flagged `fresh` hold a trial that has not started:
        their first interval trains no step, so its evaluation is their step-0 point, and it sets
        their divergence limit. That costs a new trial one interval of its slot, instead of an extra
        evaluation of every slot whenever one is refilled.

        Returns the new state and, per interval k < n_intervals and slot, its training loss and
        validation metrics, and the step of its evaluation (-1 where it recorded none) and whether
        it is alive.
        """
        tf = self.tf
        n_slots = steps.shape[0]
        zeros = tf.zeros([n_slots], self.dtype)

        def interval_fn(k, weights, state, alive, loss_limit, steps, fresh, done, records, record_steps):
            n_steps = self.steps_this_interval_graph(hyper, steps, fresh, done)
            weights, state, alive, loss_sum, loss_count = self.train_steps_graph(
                weights, state, alive, loss_limit, hyper, steps, n_steps, zeros, zeros
            )
            steps = steps + n_steps
            alive, loss_limit, done, metrics, steps_and_alive = self.close_interval_graph(
                alive, loss_limit, hyper, steps, fresh, done, stop, loss_sum, loss_count, *self.evaluate_graph(weights)
            )
            records = tf.tensor_scatter_nd_update(records, [[k]], metrics[None])
            record_steps = tf.tensor_scatter_nd_update(record_steps, [[k]], steps_and_alive[None])
            return k + 1, weights, state, alive, loss_limit, steps, tf.zeros_like(fresh), done, records, record_steps

        records = tf.zeros([MAX_INTERVALS_PER_CALL, 3, n_slots], self.dtype)
        record_steps = tf.fill([MAX_INTERVALS_PER_CALL, 2, n_slots], -1)
        _, weights, state, alive, loss_limit, steps, _, done, records, record_steps = tf.while_loop(
            lambda k, *state: (k < n_intervals) & ~tf.reduce_all(state[6]),
            interval_fn,
            [tf.constant(0), weights, state, alive, loss_limit, steps, fresh, done, records, record_steps],
        )
        return weights, state, alive, loss_limit, records, record_steps

    def steps_this_interval_graph(self, hyper, steps, fresh, done):
        """Steps each slot trains in its next interval: none when done or fresh (step-0 evaluation)."""
        tf = self.tf
        return tf.where(done | fresh, 0, tf.minimum(hyper["eval_every"], hyper["budget"] - steps))

    def train_steps_graph(
        self, weights, state, alive, loss_limit, hyper, steps, n_steps, loss_sum, loss_count, batches=None
    ):
        """Train slot r n_steps[r] steps from steps[r], adding its training losses to loss_sum and loss_count.

        Each step's minibatch is gathered from the device-resident training set at `batch_indices`,
        or, for a streamed dataset, taken from `batches` = (x [steps, slots, batch, ...], y [steps, slots, batch])
        read on the host at the same indices.
        """
        tf = self.tf

        def step_fn(i, weights, state, alive, loss_sum, loss_count):
            step = steps + i
            active = alive & (i < n_steps)
            if batches is None:
                index = batch_indices(tf, hyper["seed"], step, self.batch_size, self.x_train.shape[0])
                x, y = tf.gather(self.x_train, index), tf.gather(self.y_train, index)
            else:
                x, y = tf.cast(batches[0][i], self.dtype), batches[1][i]
            if self.augment is not None:  # training batches only; stateless, keyed by trial seed and step
                x = self.augment(x, hyper["seed"], step)
            # A model with training-time randomness (a Keras model's dropout) keys it by trial seed and step.
            keys = {"seeds": hyper["seed"], "steps": step} if getattr(self.model, "keyed_randomness", False) else {}
            loss, grads = self.loss_and_gradients(weights, x, y, hyper["label_smoothing"], active, keys)
            alive = alive & tf.where(active, tf.math.is_finite(loss) & (loss < loss_limit), True)
            keep = active & alive
            # A slot that does not train this step keeps its weights and optimizer state through its
            # per-trial scalars (optimizers.step_scalars), not a per-weight select: its gradient is
            # zero (its loss is left out of `total`). A diverged slot's weights may turn NaN; it is
            # finished and never read.
            scalars = step_scalars(self.optimizer, hyper, tf.cast(step, self.dtype), keep, tf)
            new_weights, new_state = update_weights(
                self.optimizer, weights, state, grads, scalars, lambda value, w: per_trial(tf, value, w), tf
            )
            loss_sum = loss_sum + tf.where(keep, loss, tf.zeros_like(loss))
            loss_count = loss_count + tf.cast(keep, self.dtype)
            return i + 1, new_weights, new_state, alive, loss_sum, loss_count

        _, weights, state, alive, loss_sum, loss_count = tf.while_loop(
            lambda i, *_: i < tf.reduce_max(n_steps),
            step_fn,
            [tf.constant(0), weights, state, alive, loss_sum, loss_count],
        )
        return weights, state, alive, loss_sum, loss_count

    def loss_and_gradients_graph(self, weights, x, y, label_smoothing, active, keys):
        """Training loss of every slot on its batch, and the gradient of the active slots' summed loss."""
        tf = self.tf
        with tf.GradientTape() as tape:
            tape.watch(weights)
            loss = self.loss(self.model.apply(weights, x, shared=False, **keys), y, label_smoothing)
            total = tf.reduce_sum(tf.where(active, loss, tf.zeros_like(loss)))
        return loss, tape.gradient(total, weights)

    def divergence_limit(self, divergence_factor, initial_val_ce):
        """The training loss beyond which a trial has diverged: `divergence_factor` times its step-0
        validation loss, and never below that factor times the loss of a uniform guess, log(classes)."""
        tf = self.tf
        return divergence_factor * tf.maximum(initial_val_ce, tf.constant(math.log(self.num_classes), self.dtype))

    def close_interval_graph(
        self, alive, loss_limit, hyper, steps, fresh, done, stop, loss_sum, loss_count, val_ce, val_error
    ):
        """After an interval's evaluation: divergence limits of fresh slots from their step-0 point,
        which slots are now done, and the interval's record (mean training loss, validation metrics;
        step or -1 where the slot recorded nothing, alive as 0/1)."""
        tf = self.tf
        loss_limit = tf.where(fresh, self.divergence_limit(hyper["divergence_factor"], val_ce), loss_limit)
        alive = alive & tf.where(fresh, tf.math.is_finite(val_ce), True)
        recorded = ~done
        metric = tf.cast(tf.where(hyper["metric_is_error"], val_error, val_ce), tf.float64)
        met = strictly_better(metric, tf.cast(hyper["goal"], tf.float64), hyper["goal_sign"])
        done = done | ~alive | ~tf.math.is_finite(val_ce) | (steps >= hyper["budget"]) | (stop & met)
        # No step taken in the interval (a trial diverged at its first): no training loss, NaN, not 0.
        metrics = tf.stack([loss_sum / loss_count, val_ce, val_error])
        steps_and_alive = tf.stack([tf.where(recorded, steps, -1), tf.cast(alive, tf.int32)])
        return alive, loss_limit, done, metrics, steps_and_alive

    def evaluate_graph(self, weights):
        """Validation cross-entropy and error of every trial, the validation set on the device.

        Language models (labels [examples, length]) are scored per token: the mean cross-entropy
        and the fraction of wrongly predicted next tokens; `eval_batch_size` then counts tokens.
        Models with batch norm normalise with population statistics of fixed training examples
        (precise BN), so the metrics do not depend on how the validation set is chunked.
        """
        tf = self.tf
        statistics = None
        if hasattr(self.model, "batch_norm_statistics"):
            sample = tf.gather(self.x_train, batch_norm_sample(self.x_train.shape[0], self.batch_norm_sample_size))
            statistics = self.model.batch_norm_statistics(weights, sample)
        n = self.x_validation.shape[0]
        tokens = int(np.prod(self.y_validation.shape[1:]))  # labels per example: 1, or the sequence length
        chunk = max(1, self.eval_batch_size // tokens)
        n_trials = weights[0].shape[0]
        ce_sum = tf.zeros([n_trials], self.dtype)
        wrong = tf.zeros([n_trials], self.dtype)
        full_chunks = n // chunk
        starts = range(0, n, chunk)
        if full_chunks > UNROLLED_EVAL_CHUNKS:
            # A large validation set (LM1B's) in a graph loop: unrolled, it would take very long to compile.
            def chunk_of(data, i):  # a slice of static size, as the models need
                return tf.slice(data, [i * chunk] + [0] * (len(data.shape) - 1), [chunk, *data.shape[1:]])

            def add_chunk(i, ce_sum, wrong):
                x, y = chunk_of(self.x_validation, i), chunk_of(self.y_validation, i)
                return (i + 1, *self.add_evaluation_graph(weights, x, y, ce_sum, wrong, statistics))

            _, ce_sum, wrong = tf.while_loop(lambda i, *_: i < full_chunks, add_chunk, [tf.constant(0), ce_sum, wrong])
            starts = range(full_chunks * chunk, n, chunk)  # the last, partial chunk
        for start in starts:
            x = self.x_validation[start : start + chunk]
            y = self.y_validation[start : start + chunk]
            ce_sum, wrong = self.add_evaluation_graph(weights, x, y, ce_sum, wrong, statistics)
        return ce_sum / self.validation_count, wrong / self.validation_count

    def add_evaluation_graph(self, weights, x, y, ce_sum, wrong, statistics=None):
        """Add one validation batch's summed cross-entropy and error count of every trial (per token
        for language models)."""
        tf = self.tf
        x = tf.cast(x, self.dtype)
        logits = (
            self.model.apply(weights, x, shared=True)
            if statistics is None
            else self.model.apply(weights, x, shared=True, statistics=statistics)
        )
        labels = tf.broadcast_to(y[None], logits.shape[:-1])
        per_trial = list(range(1, len(labels.shape)))
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        ce_sum += tf.reduce_sum(ce, axis=per_trial)
        wrong += tf.reduce_sum(
            tf.cast(tf.argmax(logits, -1, output_type=tf.int32) != labels, self.dtype), axis=per_trial
        )
        return ce_sum, wrong

    # -- driver ----------------------------------------------------------------------------
    def training_flops_per_example(self) -> int:
        """Forward and backward pass of one example: the backward pass costs about twice the forward one."""
        return 3 * self.model.flops_per_example(self.input_shape, self.num_classes)

    def group_size_for(self, n_trials: int) -> int:
        """The automatic number of trial slots per graph for this engine's model and batch size."""
        flops = self.model.flops_per_example(self.input_shape, self.num_classes)
        n_params = sum(int(np.prod(w.shape)) for w in self.model.init(0, self.input_shape, self.num_classes))
        itemsize = 8 if self.dtype == self.tf.float64 else 4
        # Weights, gradient and optimizer state, plus activations (bounded by ~one value per FLOP / fan-in).
        bytes_per_trial = itemsize * (
            (2 + len(STATE[self.optimizer])) * n_params + self.batch_size * max(1, flops // 50)
        )
        on_cpu = not self.tf.config.list_logical_devices("GPU")
        return auto_group_size(
            flops,
            self.batch_size,
            n_trials,
            bytes_per_trial,
            self.max_trials_per_graph,
            core_cache_bytes() if on_cpu else None,
        )

    def slots_for(self, n_trials: int, group_size: int | None = None) -> int:
        """Slots of the graph that trains `n_trials`: `group_size` (auto if None), at most the trials
        and the model's limit."""
        return min(group_size or self.group_size_for(n_trials), n_trials, self.max_trials_per_graph or n_trials)

    def run(
        self,
        trials: list[dict],
        target: Target,
        *,
        divergence_factor: float = 100.0,
        stop_at_target: bool = True,
        group_size: int | None = None,
        on_finish: Callable[[TrialOutcome], None] = lambda outcome: None,
        progress: Progress | None = None,
        resume: dict[int, TrialState] | None = None,
        on_interval: Callable[[Callable[[], list[TrialState]]], None] = lambda in_flight: None,
        prune_trials: bool = False,
        share_best: Callable[[float, int], float] = lambda best_step, best_trial: best_step,
    ) -> list[TrialOutcome]:
        """Train `trials` in one graph of `group_size` slots (auto if None); outcomes in trial order.

        `resume` maps trial ids to saved states: those trials continue from there instead of step 0.
        `on_interval(in_flight)` is called after every compiled call, when every slot is consistent;
        `in_flight()` returns the states of the trials part-way through (a copy from the device).
        With `prune_trials` (config `prune`) a trial that can no longer be the study's best stops,
        pruned (trials.prune), and trials train in rounds so that the best is found early;
        `share_best(best_step, best_trial)` is called after every call with the fewest steps to
        result found here and its trial, and returns the study's, which other jobs may have found.
        """
        if not trials:
            return []
        n_slots = self.slots_for(len(trials), group_size)
        runner = SlotRunner(
            self,
            trials,
            target,
            divergence_factor,
            stop_at_target,
            on_finish,
            progress,
            resume,
            on_interval,
            prune_trials,
            share_best,
        )
        return runner.run(n_slots)
