"""Datasets larger than memory: training batches read from disk, chunk of steps by chunk of steps.

The in-memory engine keeps the training set on the device and gathers each step's minibatch at
indices from a hash of (trial seed, step). For a dataset too large for that (ImageNet at full
size: ~1.3M images, ~800 GB as float32 at 224 x 224), `StreamingEngine` computes the same indices
on the host (`engine.host_batch_indices`), reads those examples by random access from the
dataset's tfds array_record files, decodes and preprocesses them in a parallel tf.data pipeline
(the same per-image functions as datasets/preprocess.py) and hands the compiled training loop
one chunk of steps at a time, [steps, trials, batch, ...]. A background thread reads the next
chunk while the device trains on the current one. The validation set is streamed the same way,
in batches of the engine's evaluation batch size. A trial therefore sees exactly the examples,
in exactly the order, it would see in memory: in float64 both paths give the same curves.

Whether to stream is decided per workload from `dataset.streaming` (auto, true, false) and, for
auto, the dataset's size as float32 (split sizes times the preprocessed example shape) against
`dataset.in_memory_limit_gb`; the decision is logged.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from batch_science.engine import MAX_INTERVALS_PER_CALL, Engine, batch_norm_sample, host_batch_indices

log = logging.getLogger(__name__)

DEFAULT_IN_MEMORY_LIMIT_GB = 16.0
# Host memory of one chunk of training batches: enough steps to amortise a call, few enough
# that two chunks (the one training and the one being read) stay small. At least one step.
CHUNK_BYTES = 2**28
PREFETCH_CHUNKS = 1


def _example_shape(spec: dict, builder) -> tuple[int, ...]:
    """Shape of one preprocessed input example (images after resizing, if any)."""
    from batch_science.datasets import preprocess

    feature = builder.info.features[builder.info.supervised_keys[0]]
    if preprocess.applies(spec, builder) and preprocess.dataset_kind(builder).images:
        size = preprocess.image_size(spec, feature)
        return (size, size, feature.shape[-1]) if size else tuple(feature.shape)
    return tuple(feature.shape)


def dataset_gigabytes(spec: dict, builder) -> float:
    """Size of a workload's training subset and validation split as float32 arrays, in GB (1e9 bytes)."""
    from batch_science.datasets import preprocess

    splits = builder.info.splits
    n_train = preprocess._subset_size(spec, splits[spec.get("train_split", "train")].num_examples)
    n_validation = splits[spec.get("validation_split", "validation")].num_examples
    shape = _example_shape(spec, builder)
    if None in shape:  # variable-length inputs (text) are windowed later; their size is not known here
        return 0.0
    return (n_train + n_validation) * math.prod(shape) * 4 / 1e9


def should_stream(spec: dict, builder) -> bool:
    """Stream when `dataset.streaming` says true, or, for auto, when the data exceed `dataset.in_memory_limit_gb`."""
    mode = spec.get("streaming", "auto")
    name = spec["name"]
    if mode is True or mode is False:
        log.info("dataset '%s': %s (dataset.streaming: %s)", name, "streamed from disk" if mode else "held in memory", str(mode).lower())
        return mode
    limit = spec.get("in_memory_limit_gb", DEFAULT_IN_MEMORY_LIMIT_GB)
    size = dataset_gigabytes(spec, builder)
    stream = size > limit
    log.info(
        "dataset '%s': %.3g GB as float32, %s dataset.in_memory_limit_gb %g: %s", name, size,
        "over" if stream else "within", limit, "streamed from disk" if stream else "held in memory",
    )
    return stream


@dataclass
class StreamedData:
    """A dataset read from disk on demand: random-access records and how to turn them into examples.

    Reads give float32 inputs (preprocessed and standardised as in memory) and int32 labels.
    """

    name: str
    train_records: object  # array_record random-access source of the raw training records
    validation_records: object
    n_train: int
    n_validation: int
    input_shape: tuple[int, ...]
    num_classes: int
    decode: object  # raw record -> (input, label) tensors, as in memory
    image_size: int | None = None
    images: bool = False
    mean: np.ndarray | None = None  # per-channel training statistics (images)
    std: np.ndarray | None = None
    augment: Callable | None = None  # as Arrays.augment: applied to training batches on the device

    @classmethod
    def load(cls, spec: dict, builder, data_dir: str) -> "StreamedData":
        from batch_science import data
        from batch_science.datasets import preprocess

        name = spec["name"]
        if not data.is_array_record(builder):
            raise ValueError(
                f"dataset '{name}': prepared as {builder.info.file_format.value} in {builder.data_dir}; streaming needs "
                "array_record (delete that folder and its .prepared file, then rerun prepare_data)"
            )
        applies = preprocess.applies(spec, builder)
        kind = preprocess.dataset_kind(builder)
        if applies and kind.text:
            raise ValueError(f"dataset '{name}': text datasets cannot be streamed; set dataset.streaming: false")
        train_split = spec.get("train_split", "train")
        train = builder.as_data_source(split=train_split).data_source
        validation = builder.as_data_source(split=spec.get("validation_split", "validation")).data_source
        label = builder.info.features[builder.info.supervised_keys[1]]
        num_classes = label.num_classes
        if spec.get("classes"):  # as preprocess.keep_classes: the examples of the first classes, in stored order
            train, validation = (_Subset(records, _class_positions(builder, records, spec, split, data_dir)) for records, split in ((train, train_split), (validation, spec.get("validation_split", "validation"))))
            num_classes = min(num_classes, spec["classes"])
        input_feature = builder.info.features[builder.info.supervised_keys[0]]
        images = applies and kind.images
        stream = cls(
            name=name, train_records=train, validation_records=validation,
            n_train=preprocess._subset_size(spec, len(train)), n_validation=len(validation),
            input_shape=_example_shape(spec, builder), num_classes=num_classes, decode=data.decode_fn(builder),
            image_size=preprocess.image_size(spec, input_feature) if images else None, images=images,
            augment=preprocess.augmenter(spec) if images else None,
        )
        if images:
            stream.mean, stream.std = stream._training_statistics(spec, data_dir)
        return stream

    # -- reading -----------------------------------------------------------------------------
    def _examples(self, records, standardise: bool = True):
        """tf.data of preprocessed (x float32, y int32) examples from raw records, decoded in parallel, in order."""
        import tensorflow as tf

        from batch_science.datasets import preprocess

        mean, std = self.mean, self.std

        def prepare(record):
            x, y = self.decode(record)
            if self.images:
                x = preprocess.scaled_image(x, self.image_size)
                if standardise:  # float64 arithmetic as preprocess.standardised, rounded to float32
                    x = tf.cast((tf.cast(x, tf.float64) - mean) / std, tf.float32)
            return tf.cast(x, tf.float32), tf.cast(y, tf.int32)

        return tf.data.Dataset.from_tensor_slices(records).map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def read(self, source, indices: np.ndarray, standardise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Examples at `indices` of a records source: x [n, ...] float32, y [n] int32."""
        records = source.__getitems__([int(i) for i in indices])
        if not records:
            return np.zeros((0, *self.input_shape), np.float32), np.zeros(0, np.int32)
        x, y = next(iter(self._examples(records, standardise).batch(len(records))))
        return x.numpy(), y.numpy()

    def _training_statistics(self, spec: dict, data_dir: str):
        """Per-channel mean and std of the training images, computed once and cached in data_dir."""
        from batch_science.datasets import preprocess
        from batch_science.io import atomic_write

        key = {k: spec.get(k) for k in ("name", "train_split", "train_examples", "train_fraction", "image_size")}
        key["n_train"] = self.n_train
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        cache = Path(data_dir) / f"{self.name}_statistics_{digest}.json"
        if cache.exists():
            saved = json.loads(cache.read_text())
            return np.array(saved["mean"]), np.array(saved["std"])
        log.info("dataset '%s': computing per-channel statistics of %d training images (once; cached in %s)", self.name, self.n_train, cache)
        chunk = preprocess.STATISTICS_CHUNK
        chunks = (self.read(self.train_records, np.arange(start, min(start + chunk, self.n_train)), standardise=False)[0] for start in range(0, self.n_train, chunk))
        mean, std = preprocess.channel_statistics(_prefetched(chunks))
        # Several tune jobs may compute it at once: same numbers, each renames its own file into place.
        text = json.dumps({"key": key, "mean": mean.tolist(), "std": std.tolist()})
        atomic_write(cache, lambda tmp: Path(tmp).write_text(text))
        return mean, std


class _Subset:
    """The records of a source at `positions`, indexed 0..len-1 (a class subset)."""

    def __init__(self, records, positions: np.ndarray):
        self.records, self.positions = records, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitems__(self, keys):
        return self.records.__getitems__([int(self.positions[k]) for k in keys])


def _class_positions(builder, records, spec: dict, split: str, data_dir: str) -> np.ndarray:
    """Positions of a split's examples whose label is below dataset.classes; read once (labels only) and cached."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from batch_science.io import atomic_write

    cache = Path(data_dir) / f"{spec['name']}_classes{spec['classes']}_{split.replace('/', '_')}.npy"
    if cache.exists():
        return np.load(cache)
    input_key, label_key = builder.info.supervised_keys
    skip_input = {input_key: tfds.decode.SkipDecoding()}
    labels = (
        tf.data.Dataset.from_tensor_slices(np.arange(len(records)))
        .batch(4096)
        .map(lambda at: tf.numpy_function(lambda a: np.array(records.__getitems__(a.tolist()), dtype=object), [at], tf.string))
        .unbatch()
        .map(lambda record: builder.info.features.deserialize_example(record, decoders=skip_input)[label_key], num_parallel_calls=tf.data.AUTOTUNE)
    )
    positions = np.flatnonzero(np.fromiter(tfds.as_numpy(labels), np.int64) < spec["classes"])

    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, positions)

    atomic_write(cache, write)
    return positions


def _prefetched(items, depth: int = PREFETCH_CHUNKS):
    """Iterate `items` while a background thread produces the next `depth` of them (reads overlap compute)."""
    done = object()
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put(item)
            buffer.put(done)
        except BaseException as error:  # handed to the consumer, raised there
            buffer.put(error)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full buffer
            try:
                buffer.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()


class StreamingEngine(Engine):
    """The engine on a StreamedData: the same compiled training steps, fed chunks of host-read batches."""

    def __init__(self, model, stream: StreamedData, optimizer: str, batch_size: int, precision: str = "float32", eval_batch_size: int = 8192):
        super().__init__(model, stream, optimizer, batch_size, precision, eval_batch_size)
        self.train_chunk = self.compiled(self._train_steps)
        self.add_evaluation = self.compiled(self._add_evaluation)
        self.close_interval = self.compiled(self._close_interval)
        self.steps_this_interval = self.compiled(self._steps_this_interval)
        self.mean_over_validation = self.compiled(self._mean_over_validation)
        self.intervals = self._streamed_intervals  # what _SlotRunner calls, with the compiled call's arguments
        self.evaluate = self._streamed_evaluate
        self.stats["read_wait_s"] = 0.0  # time the device waited for host reads
        self.batch_norm_examples = None
        if hasattr(model, "batch_norm_statistics"):
            self.batch_norm_statistics = self.compiled(model.batch_norm_statistics)

    def _hold_data(self, stream: StreamedData) -> None:
        self.stream = stream
        self.input_shape = stream.input_shape

    def chunk_steps(self, n_slots: int) -> int:
        """Steps per chunk of batches: CHUNK_BYTES of float32 inputs, at least one step."""
        step_bytes = n_slots * self.batch_size * math.prod(self.input_shape) * 4
        return max(1, CHUNK_BYTES // step_bytes)

    def _chunks(self, seeds, steps, n_steps, chunk: int):
        """(first step offset, x [chunk, slots, batch, ...], y) for the interval; steps a slot does not train are zeros."""
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
                x[at, rows], y[at, rows] = xs.reshape(len(wanted), self.batch_size, *self.input_shape), ys.reshape(len(wanted), self.batch_size)
            yield start, tf.constant(x), tf.constant(y)

    def _streamed_intervals(self, weights, velocity, alive, loss_limit, hyper, steps, fresh, done, stop, n_intervals):
        """Engine._intervals' contract, one interval per call: its batches read on the host a chunk of steps at a time."""
        tf = self.tf
        n_steps = self.steps_this_interval(hyper, steps, fresh, done)
        seeds, first_steps, n_steps_host = hyper["seed"].numpy(), steps.numpy(), n_steps.numpy()
        chunk = self.chunk_steps(len(seeds))
        loss_sum = loss_count = tf.zeros([len(seeds)], self.dtype)
        for start, x, y in self._timed(self._chunks(seeds, first_steps, n_steps_host, chunk)):
            n_chunk = tf.constant(np.clip(n_steps_host - start, 0, chunk).astype(np.int32))
            weights, velocity, alive, loss_sum, loss_count = self.train_chunk(
                weights, velocity, alive, loss_limit, hyper, steps + start, n_chunk, loss_sum, loss_count, (x, y)
            )
        alive, loss_limit, done, metrics, steps_and_alive = self.close_interval(
            alive, loss_limit, hyper, steps + n_steps, fresh, done, stop, loss_sum, loss_count, *self._streamed_evaluate(weights)
        )
        unused = MAX_INTERVALS_PER_CALL - 1
        records = tf.concat([metrics[None], tf.zeros([unused, *metrics.shape], metrics.dtype)], 0)
        record_steps = tf.concat([steps_and_alive[None], tf.fill([unused, *steps_and_alive.shape], -1)], 0)
        return weights, velocity, alive, loss_limit, records, record_steps

    def _streamed_evaluate(self, weights):
        """As Engine._evaluate, the validation set read in batches of eval_batch_size; batch-norm models
        normalise with the statistics of the same fixed training examples (precise BN)."""
        tf, stream = self.tf, self.stream
        statistics = None
        if hasattr(self.model, "batch_norm_statistics"):
            if self.batch_norm_examples is None:  # read once: the same examples at every evaluation
                self.batch_norm_examples = tf.constant(stream.read(stream.train_records, batch_norm_sample(stream.n_train))[0], self.dtype)
            statistics = self.batch_norm_statistics(weights, self.batch_norm_examples)
        ce_sum = wrong = tf.zeros([weights[0].shape[0]], self.dtype)
        batches = (stream.read(stream.validation_records, np.arange(start, min(start + self.eval_batch_size, stream.n_validation))) for start in range(0, stream.n_validation, self.eval_batch_size))
        for x, y in self._timed(batches):
            ce_sum, wrong = self.add_evaluation(weights, tf.constant(x), tf.constant(y), ce_sum, wrong, statistics)
        return self.mean_over_validation(ce_sum, wrong)

    def _mean_over_validation(self, ce_sum, wrong):
        # Compiled as in Engine._evaluate: XLA may divide by a constant as a multiplication, eager TF would not.
        return ce_sum / self.stream.n_validation, wrong / self.stream.n_validation

    def _timed(self, items):
        """`_prefetched(items)`, adding the time spent waiting for each item to stats["read_wait_s"]."""
        iterator = _prefetched(items)
        while True:
            started = time.perf_counter()
            item = next(iterator, None)
            self.stats["read_wait_s"] += time.perf_counter() - started
            if item is None:
                return
            yield item
