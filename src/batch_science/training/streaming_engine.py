"""The engine on a dataset larger than memory (data/streamed.py): the same compiled training steps,
fed chunks of batches read on the host at the engine's batch indices (`host_batch_indices`).

A background thread reads the next chunk while the device trains on the current one; the
validation set is read the same way, in batches of the engine's evaluation batch size. A trial
sees exactly the examples, in exactly the order, it would see in memory: in float64 both paths
give the same curves.
"""

from __future__ import annotations

import math
import time

import numpy as np

from batch_science.data.streamed import StreamedData, prefetched
from batch_science.training.engine import (
    BATCH_NORM_EXAMPLES,
    Engine,
    batch_norm_sample,
    exact_divisor,
    host_batch_indices,
)
from batch_science.training.runner import MAX_INTERVALS_PER_CALL

# Host memory of one chunk of training batches: enough steps to amortise a call, few enough
# that two chunks (the one training and the one being read) stay small. At least one step.
CHUNK_BYTES = 2**28


class StreamingEngine(Engine):
    """The engine on a StreamedData: the same compiled training steps, fed chunks of host-read batches."""

    def __init__(
        self,
        model,
        stream: StreamedData,
        optimizer: str,
        batch_size: int,
        precision: str = "float32",
        eval_batch_size: int = 8192,
        batch_norm_sample_size: int = BATCH_NORM_EXAMPLES,
    ):
        super().__init__(
            model,
            stream,
            optimizer,
            batch_size,
            precision,
            eval_batch_size,
            batch_norm_sample_size=batch_norm_sample_size,
        )
        self.train_chunk = self.compiled(self.train_steps_graph)
        self.add_evaluation = self.compiled(self.add_evaluation_graph)
        self.close_interval = self.compiled(self.close_interval_graph)
        self.steps_this_interval = self.compiled(self.steps_this_interval_graph)
        self.mean_over_validation = self.compiled(self.mean_over_validation_graph)
        self.intervals = self._streamed_intervals  # what SlotRunner calls, with the compiled call's arguments
        self.evaluate = self._streamed_evaluate
        self.stats["read_wait_s"] = 0.0  # time the device waited for host reads
        self.batch_norm_inputs = None
        if hasattr(model, "batch_norm_statistics"):
            self.batch_norm_statistics = self.compiled(model.batch_norm_statistics)

    def hold_data(self, stream: StreamedData) -> None:
        self.stream = stream
        self.input_shape = stream.input_shape
        self.validation_count = exact_divisor(self.tf, stream.n_validation, self.dtype)

    def chunk_steps(self, n_slots: int) -> int:
        """Steps per chunk of batches: CHUNK_BYTES of float32 inputs, at least one step."""
        step_bytes = n_slots * self.batch_size * math.prod(self.input_shape) * 4
        return max(1, CHUNK_BYTES // step_bytes)

    def _chunks(self, seeds, steps, n_steps, chunk: int):
        """(first step offset, x [chunk, slots, batch, ...], y) for the interval; steps a slot does not
        train are zeros."""
        tf, stream = self.tf, self.stream
        n_slots = len(seeds)
        for start in range(0, int(n_steps.max(initial=0)), chunk):
            x = np.zeros((chunk, n_slots, self.batch_size, *self.input_shape), np.float32)
            y = np.zeros((chunk, n_slots, self.batch_size), np.int32)
            wanted = [(i, r) for i in range(chunk) for r in range(n_slots) if start + i < n_steps[r]]
            if wanted:
                rows = np.array([r for _, r in wanted])
                at = np.array([i for i, _ in wanted])
                index = host_batch_indices(seeds[rows], steps[rows] + start + at, self.batch_size, stream.n_train)
                xs, ys = stream.read(stream.train_records, index.ravel())
                x[at, rows], y[at, rows] = (
                    xs.reshape(len(wanted), self.batch_size, *self.input_shape),
                    ys.reshape(len(wanted), self.batch_size),
                )
            yield start, tf.constant(x), tf.constant(y)

    def _streamed_intervals(self, weights, state, alive, loss_limit, hyper, steps, fresh, done, stop, n_intervals):
        """Engine.intervals_graph's contract, one interval per call: its batches read on the host a
        chunk of steps at a time."""
        tf = self.tf
        n_steps = self.steps_this_interval(hyper, steps, fresh, done)
        seeds, first_steps, n_steps_host = hyper["seed"].numpy(), steps.numpy(), n_steps.numpy()
        chunk = self.chunk_steps(len(seeds))
        loss_sum = loss_count = tf.zeros([len(seeds)], self.dtype)
        for start, x, y in self._timed(self._chunks(seeds, first_steps, n_steps_host, chunk)):
            n_chunk = tf.constant(np.clip(n_steps_host - start, 0, chunk).astype(np.int32))
            weights, state, alive, loss_sum, loss_count = self.train_chunk(
                weights, state, alive, loss_limit, hyper, steps + start, n_chunk, loss_sum, loss_count, (x, y)
            )
        alive, loss_limit, done, metrics, steps_and_alive = self.close_interval(
            alive,
            loss_limit,
            hyper,
            steps + n_steps,
            fresh,
            done,
            stop,
            loss_sum,
            loss_count,
            *self._streamed_evaluate(weights),
        )
        unused = MAX_INTERVALS_PER_CALL - 1
        records = tf.concat([metrics[None], tf.zeros([unused, *metrics.shape], metrics.dtype)], 0)
        record_steps = tf.concat([steps_and_alive[None], tf.fill([unused, *steps_and_alive.shape], -1)], 0)
        return weights, state, alive, loss_limit, records, record_steps

    def _streamed_evaluate(self, weights):
        """As Engine.evaluate_graph, the validation set read in batches of eval_batch_size; batch-norm models
        normalise with the statistics of the same fixed training examples (precise BN)."""
        tf, stream = self.tf, self.stream
        statistics = None
        if hasattr(self.model, "batch_norm_statistics"):
            if self.batch_norm_inputs is None:  # read once: the same examples at every evaluation
                self.batch_norm_inputs = tf.constant(
                    stream.read(stream.train_records, batch_norm_sample(stream.n_train, self.batch_norm_sample_size))[
                        0
                    ],
                    self.dtype,
                )
            statistics = self.batch_norm_statistics(weights, self.batch_norm_inputs)
        ce_sum = wrong = tf.zeros([weights[0].shape[0]], self.dtype)
        batches = (
            stream.read(
                stream.validation_records, np.arange(start, min(start + self.eval_batch_size, stream.n_validation))
            )
            for start in range(0, stream.n_validation, self.eval_batch_size)
        )
        for x, y in self._timed(batches):
            ce_sum, wrong = self.add_evaluation(weights, tf.constant(x), tf.constant(y), ce_sum, wrong, statistics)
        return self.mean_over_validation(ce_sum, wrong)

    def mean_over_validation_graph(self, ce_sum, wrong):
        # Compiled and divided as in Engine.evaluate_graph, so both give the same bits.
        return ce_sum / self.validation_count, wrong / self.validation_count

    def _timed(self, items):
        """`prefetched(items)`, adding the time spent waiting for each item to stats["read_wait_s"]."""
        iterator = prefetched(items)
        while True:
            started = time.perf_counter()
            item = next(iterator, None)
            self.stats["read_wait_s"] += time.perf_counter() - started
            if item is None:
                return
            yield item
