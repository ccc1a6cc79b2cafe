"""Datasets larger than memory: training batches read from disk, chunk of steps by chunk of steps.

The in-memory engine keeps the training set on the device and gathers each step's minibatch at
indices from a hash of (trial seed, step). For a dataset too large for that (ImageNet at full
size: ~1.3M images, ~800 GB as float32 at 224 x 224), training/streaming_engine.py computes the
same indices on the host, and `StreamedData` reads those examples by random access from the
dataset's tfds array_record files, decoding and preprocessing them in a parallel tf.data
pipeline (the same per-image functions as data/preprocess.py), so a trial sees exactly the
examples it would see in memory.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batch_science.config import dataset_name
from batch_science.data import preprocess
from batch_science.data.arrays import class_positions, train_subset_size
from batch_science.data.tfds_access import dataset_kind, decode_fn, is_array_record
from batch_science.io import atomic_write

log = logging.getLogger(__name__)

DEFAULT_IN_MEMORY_LIMIT_GB = 16.0
PREFETCH_CHUNKS = 1


def _example_shape(spec: dict, builder) -> tuple[int, ...]:
    """Shape of one preprocessed input example (images after resizing, if any)."""
    feature = builder.info.features[builder.info.supervised_keys[0]]
    if preprocess.applies(spec, builder) and dataset_kind(builder).images:
        size = preprocess.image_size(spec, feature)
        return (size, size, feature.shape[-1]) if size else tuple(feature.shape)
    return tuple(feature.shape)


def dataset_gigabytes(spec: dict, builder) -> float:
    """Size of a workload's training subset and validation split as float32 arrays, in GB (1e9 bytes)."""
    splits = builder.info.splits
    n_train = train_subset_size(spec, splits[spec.get("train_split", "train")].num_examples)
    n_validation = splits[spec.get("validation_split", "validation")].num_examples
    shape = _example_shape(spec, builder)
    if None in shape:  # variable-length inputs (text) are windowed later; their size is not known here
        return 0.0
    return (n_train + n_validation) * math.prod(shape) * 4 / 1e9


def should_stream(spec: dict, builder) -> bool:
    """Stream when `dataset.streaming` says true, or, for auto, when the data exceed `dataset.in_memory_limit_gb`."""
    mode = spec.get("streaming", "auto")
    name = dataset_name(spec)
    if mode is True or mode is False:
        log.info(
            "dataset '%s': %s (dataset.streaming: %s)",
            name,
            "streamed from disk" if mode else "held in memory",
            str(mode).lower(),
        )
        return mode
    limit = spec.get("in_memory_limit_gb", DEFAULT_IN_MEMORY_LIMIT_GB)
    size = dataset_gigabytes(spec, builder)
    stream = size > limit
    log.info(
        "dataset '%s': %.3g GB as float32, %s dataset.in_memory_limit_gb %g: %s",
        name,
        size,
        "over" if stream else "within",
        limit,
        "streamed from disk" if stream else "held in memory",
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
    def load(cls, spec: dict, builder, data_dir: str) -> StreamedData:
        name = dataset_name(spec)
        if not is_array_record(builder):
            raise ValueError(
                f"dataset '{name}': prepared as {builder.info.file_format.value} in {builder.data_dir}; streaming "
                "needs "
                "array_record (delete that folder and its .prepared file, then rerun prepare_data)"
            )
        applies = preprocess.applies(spec, builder)
        kind = dataset_kind(builder)
        if applies and kind.text:
            raise ValueError(f"dataset '{name}': text datasets cannot be streamed; set dataset.streaming: false")
        train_split = spec.get("train_split", "train")
        train = builder.as_data_source(split=train_split).data_source
        validation = builder.as_data_source(split=spec.get("validation_split", "validation")).data_source
        label = builder.info.features[builder.info.supervised_keys[1]]
        num_classes = label.num_classes
        if spec.get("classes"):  # the examples of the first classes, in stored order (arrays.class_positions)
            train, validation = (
                _Subset(records, _class_positions(builder, records, spec, split, data_dir))
                for records, split in ((train, train_split), (validation, spec.get("validation_split", "validation")))
            )
            num_classes = min(num_classes, spec["classes"])
        input_feature = builder.info.features[builder.info.supervised_keys[0]]
        images = applies and kind.images
        stream = cls(
            name=name,
            train_records=train,
            validation_records=validation,
            n_train=train_subset_size(spec, len(train)),
            n_validation=len(validation),
            input_shape=_example_shape(spec, builder),
            num_classes=num_classes,
            decode=decode_fn(builder),
            image_size=preprocess.image_size(spec, input_feature) if images else None,
            images=images,
            augment=preprocess.augmenter(spec) if images else None,
        )
        if images:
            stream.mean, stream.std = stream._training_statistics(spec, data_dir)
        return stream

    # -- reading -----------------------------------------------------------------------------
    def _examples(self, records, standardise: bool = True):
        """tf.data of preprocessed (x float32, y int32) examples from raw records, decoded in parallel, in order."""
        import tensorflow as tf

        mean, std = self.mean, self.std

        def prepare(record):
            x, y = self.decode(record)
            if self.images:
                x = preprocess.scaled_image(x, self.image_size)
                if standardise:  # float64 arithmetic as preprocess.standardised, rounded to float32
                    x = tf.cast((tf.cast(x, tf.float64) - mean) / std, tf.float32)
            return tf.cast(x, tf.float32), tf.cast(y, tf.int32)

        return tf.data.Dataset.from_tensor_slices(records).map(
            prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )

    def read(self, source, indices: np.ndarray, standardise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Examples at `indices` of a records source: x [n, ...] float32, y [n] int32."""
        records = source.__getitems__([int(i) for i in indices])
        if not records:
            return np.zeros((0, *self.input_shape), np.float32), np.zeros(0, np.int32)
        x, y = next(iter(self._examples(records, standardise).batch(len(records))))
        return x.numpy(), y.numpy()

    def _training_statistics(self, spec: dict, data_dir: str):
        """Per-channel mean and std of the training images, computed once and cached in data_dir."""
        key = {k: spec.get(k) for k in ("name", "train_split", "train_examples", "train_fraction", "image_size")}
        key["n_train"] = self.n_train
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        cache = Path(data_dir) / f"{self.name}_statistics_{digest}.json"
        if cache.exists():
            saved = json.loads(cache.read_text())
            return np.array(saved["mean"]), np.array(saved["std"])
        log.info(
            "dataset '%s': computing per-channel statistics of %d training images (once; cached in %s)",
            self.name,
            self.n_train,
            cache,
        )
        chunk = preprocess.STATISTICS_CHUNK
        chunks = (
            self.read(self.train_records, np.arange(start, min(start + chunk, self.n_train)), standardise=False)[0]
            for start in range(0, self.n_train, chunk)
        )
        mean, std = preprocess.channel_statistics(prefetched(chunks))
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

    cache = Path(data_dir) / f"{spec['name']}_classes{spec['classes']}_{split.replace('/', '_')}.npy"
    if cache.exists():
        return np.load(cache)
    input_key, label_key = builder.info.supervised_keys
    skip_input = {input_key: tfds.decode.SkipDecoding()}
    labels = (
        tf.data.Dataset.from_tensor_slices(np.arange(len(records)))
        .batch(4096)
        .map(
            lambda at: tf.numpy_function(
                lambda a: np.array(records.__getitems__(a.tolist()), dtype=object), [at], tf.string
            )
        )
        .unbatch()
        .map(
            lambda record: builder.info.features.deserialize_example(record, decoders=skip_input)[label_key],
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    )
    positions = class_positions(np.fromiter(tfds.as_numpy(labels), np.int64), spec["classes"])

    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, positions)

    atomic_write(cache, write)
    return positions


def prefetched(items, depth: int = PREFETCH_CHUNKS):
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
