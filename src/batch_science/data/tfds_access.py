"""Access to tensorflow-datasets: builders (the built-in ones registered), preparing, reading splits.

Datasets are prepared in tfds's array_record format, which allows random access (streaming reads
batches from it); datasets prepared earlier in the tfrecord format still load into memory. The
rest of the package reads tfds only through this module.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batch_science.imports import import_object

# tfds would otherwise look up community datasets on the network when resolving names.
os.environ.setdefault("TFDS_DISABLE_COMMUNITY_DATASETS", "1")


def builder(name: str, data_dir: str):
    """The tfds builder of a dataset name; the built-in builders (data/builders/) are registered first."""
    import tensorflow_datasets as tfds

    import batch_science.data.builders.mnist1d  # noqa: F401  registers the built-in builders
    import batch_science.data.builders.synthetic_text  # noqa: F401

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"dataset '{name}': not a tensorflow-datasets builder") from None


def dataset_builder(spec: dict, data_dir: str, config_dir: str | None = None):
    """The tfds builder of a workload's dataset block: a tfds name, a builder class by import path
    (`builder: "package.module:Class"`, imported from config_dir or PYTHONPATH), or an .npz file
    (`npz: path`, relative to config_dir). ValueError naming the problem."""
    import tensorflow_datasets as tfds

    if "builder" in spec:
        cls = import_object(spec["builder"], config_dir)
        if not (isinstance(cls, type) and issubclass(cls, tfds.core.DatasetBuilder)):
            raise ValueError(f"'{spec['builder']}': not a tensorflow-datasets builder class")
        return cls(data_dir=data_dir)
    if "npz" in spec:
        from batch_science.data.builders.npz_arrays import NpzArrays, npz_config

        path = Path(config_dir or ".", spec["npz"])
        if not path.is_file():
            raise ValueError(f"'{spec['npz']}': no such file ({path})")
        return NpzArrays(data_dir=data_dir, config=npz_config(str(path)))
    return builder(spec["name"], data_dir)


def prepare(dataset: str | dict, data_dir: str, manual_dir: str | None = None, config_dir: str | None = None) -> None:
    """Generate or download-and-prepare a dataset (a tfds name or a workload's dataset block) once,
    before tune jobs read it (array_record: random access)."""
    import tensorflow_datasets as tfds

    spec = {"name": dataset} if isinstance(dataset, str) else dataset
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    dataset_builder(spec, data_dir, config_dir).download_and_prepare(download_config=config, file_format="array_record")


def is_array_record(dataset_builder) -> bool:
    import tensorflow_datasets as tfds

    return dataset_builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD


@dataclass(frozen=True)
class Kind:
    images: bool
    text: bool


def dataset_kind(dataset_builder) -> Kind:
    """Whether a builder's supervised input is an Image or Text feature."""
    import tensorflow_datasets as tfds

    keys = dataset_builder.info.supervised_keys
    if not keys:
        raise ValueError(
            f"dataset '{dataset_builder.name}': has no supervised keys (input, label); not usable by a model"
        )
    feature = dataset_builder.info.features[keys[0]]
    return Kind(images=isinstance(feature, tfds.features.Image), text=isinstance(feature, tfds.features.Text))


def decode_fn(dataset_builder):
    """Serialized tfds record -> (input, label), by the features' own TensorFlow decoders (as tfds's as_dataset)."""
    features = dataset_builder.info.features
    input_key, label_key = dataset_builder.info.supervised_keys

    def decode(record):
        example = features.deserialize_example(record)
        return example[input_key], example[label_key]

    return decode


def supervised_examples(dataset_builder, split: str):
    """A split's (input, label) examples in stored order as a tf.data.Dataset, from either tfds file format."""
    import tensorflow as tf

    if not is_array_record(dataset_builder):
        return dataset_builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    records = dataset_builder.as_data_source(split=split).data_source  # raw records, decoded as as_dataset would
    return tf.data.Dataset.from_tensor_slices(records.__getitems__(range(len(records)))).map(decode_fn(dataset_builder))


def split_examples(dataset_builder, split: str) -> tuple[list, list]:
    """A split's inputs and labels as lists of NumPy values (images may differ in size)."""
    import tensorflow_datasets as tfds

    inputs, labels = [], []
    for x, y in tfds.as_numpy(supervised_examples(dataset_builder, split)):
        inputs.append(x)
        labels.append(y)
    return inputs, labels


def split_arrays(dataset_builder, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split of same-shaped examples as two arrays (inputs, labels).

    Decoded through tf.data once (over a second for MNIST-1D), then kept beside the prepared
    dataset as .npz, which every later job loads in milliseconds. Written under a temporary name
    and renamed, so concurrent or killed jobs never leave a partial file; a read-only data folder
    only means decoding each time.
    """
    import tensorflow_datasets as tfds

    cache = Path(dataset_builder.data_dir) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', split)}.arrays.npz"
    try:
        with np.load(cache) as stored:
            return stored["inputs"], stored["labels"]
    except (OSError, KeyError, ValueError):  # absent, or unreadable: decode again
        pass
    examples = supervised_examples(dataset_builder, split)
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


def num_classes(dataset_builder) -> int:
    """Classes of the builder's supervised label feature."""
    return dataset_builder.info.features[dataset_builder.info.supervised_keys[1]].num_classes
