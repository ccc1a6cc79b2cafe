"""Load a workload's dataset through tensorflow-datasets into in-memory arrays.

Built-in builders (MNIST-1D, synthetic_text) and downloadable tfds datasets share this one path.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
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
    """Generate or download-and-prepare a dataset once, before tune jobs read it."""
    import tensorflow_datasets as tfds

    builder = _builder(name, data_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    builder.download_and_prepare(download_config=config)


def load(spec: dict, data_dir: str) -> Arrays:
    """Arrays of a workload's `dataset` config block (name, splits, optional training subset)."""
    import tensorflow_datasets as tfds

    builder = _builder(spec["name"], data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(f"dataset '{spec['name']}' is not prepared in {data_dir} (run the prepare_data rule)")
    from batch_science.datasets import preprocess

    if preprocess.applies(spec, builder):  # images and text: the paper's preprocessing
        return preprocess.load_arrays(builder, spec, data_dir)
    splits = [spec.get("train_split", "train"), spec.get("validation_split", "validation")]
    (x_train, y_train), (x_validation, y_validation) = (
        tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True)) for split in splits
    )
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
