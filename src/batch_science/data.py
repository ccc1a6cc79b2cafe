"""Load a workload's dataset through tensorflow-datasets into in-memory arrays.

Built-in builders (MNIST-1D, synthetic_text) and downloadable tfds datasets share this one path.
Datasets are prepared in tfds's array_record format, which allows random access: a dataset too
large for memory is then streamed from disk instead (streaming.py decides and reads). Datasets
prepared earlier in the tfrecord format still load into memory.
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

# tfds would otherwise look up community datasets on the network when resolving names.
os.environ.setdefault("TFDS_DISABLE_COMMUNITY_DATASETS", "1")


@dataclass
class Arrays:
    """A dataset held in memory: training and validation examples with integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray
    num_classes: int
    # Device-side augmentation of a training batch, augment(x [trials, batch, ...], seeds [trials], step),
    # or None (see datasets/preprocess.py augment_batch).
    augment: Callable | None = None


def _builder(name: str, data_dir: str, manual_dir: str | None = None):
    import tensorflow_datasets as tfds

    import batch_science.datasets.mnist1d  # noqa: F401  registers the built-in builders
    import batch_science.datasets.synthetic_text  # noqa: F401

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"dataset '{name}': not a tensorflow-datasets builder") from None


def prepare(name: str, data_dir: str, manual_dir: str | None = None) -> None:
    """Generate or download-and-prepare a dataset once, before tune jobs read it (array_record: random access)."""
    import tensorflow_datasets as tfds

    builder = _builder(name, data_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    builder.download_and_prepare(download_config=config, file_format="array_record")


def is_array_record(builder) -> bool:
    import tensorflow_datasets as tfds

    return builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD


def decode_fn(builder):
    """Serialized tfds record -> (input, label), by the features' own TensorFlow decoders (as tfds's as_dataset)."""
    features = builder.info.features
    input_key, label_key = builder.info.supervised_keys

    def decode(record):
        example = features.deserialize_example(record)
        return example[input_key], example[label_key]

    return decode


def supervised_examples(builder, split: str):
    """A split's (input, label) examples in stored order as a tf.data.Dataset, from either tfds file format."""
    import tensorflow as tf

    if not is_array_record(builder):
        return builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    records = builder.as_data_source(split=split).data_source  # the raw records: decoded below as as_dataset would
    return tf.data.Dataset.from_tensor_slices(records.__getitems__(range(len(records)))).map(decode_fn(builder))


def _split_arrays(builder, split: str):
    """A split's (inputs, labels) as two arrays.

    Decoded through tf.data once (over a second for MNIST-1D), then kept beside the prepared
    dataset as .npz, which every later job loads in milliseconds. Written under a temporary name
    and renamed, so concurrent or killed jobs never leave a partial file; a read-only data folder
    only means decoding each time.
    """
    import tensorflow_datasets as tfds

    cache = Path(builder.data_dir) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', split)}.arrays.npz"
    try:
        with np.load(cache) as stored:
            return stored["inputs"], stored["labels"]
    except (OSError, KeyError, ValueError):  # absent, or unreadable: decode again
        pass
    examples = supervised_examples(builder, split)
    inputs, labels = next(iter(tfds.as_numpy(examples.batch(int(examples.cardinality())))))
    partial = cache.with_name(f".{cache.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as file:
            np.savez(file, inputs=inputs, labels=labels)
        os.replace(partial, cache)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return inputs, labels


def load(spec: dict, data_dir: str) -> "Arrays | streaming.StreamedData":
    """Arrays of a workload's `dataset` config block (name, splits, optional training subset),
    or, for a dataset too large for memory (see streaming.should_stream), its StreamedData."""
    import tensorflow_datasets as tfds

    builder = _builder(spec["name"], data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(f"dataset '{spec['name']}' is not prepared in {data_dir} (run the prepare_data rule)")
    from batch_science import streaming
    from batch_science.datasets import preprocess

    if streaming.should_stream(spec, builder):
        return streaming.StreamedData.load(spec, builder, data_dir)
    if preprocess.applies(spec, builder):  # images and text: the paper's preprocessing
        return preprocess.load_arrays(builder, spec, data_dir)
    splits = [spec.get("train_split", "train"), spec.get("validation_split", "validation")]
    (x_train, y_train), (x_validation, y_validation) = (_split_arrays(builder, split) for split in splits)
    if spec.get("train_examples"):
        x_train, y_train = x_train[: spec["train_examples"]], y_train[: spec["train_examples"]]
    elif spec.get("train_fraction"):
        keep = max(1, int(spec["train_fraction"] * len(x_train)))
        x_train, y_train = x_train[:keep], y_train[:keep]
    num_classes = builder.info.features[builder.info.supervised_keys[1]].num_classes
    if spec.get("classes"):
        train_kept, validation_kept = y_train < spec["classes"], y_validation < spec["classes"]
        x_train, y_train, x_validation, y_validation = x_train[train_kept], y_train[train_kept], x_validation[validation_kept], y_validation[validation_kept]
        num_classes = min(num_classes, spec["classes"])
    return Arrays(x_train, y_train.astype(np.int32), x_validation, y_validation.astype(np.int32), num_classes)
