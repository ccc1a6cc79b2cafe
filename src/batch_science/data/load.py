"""A workload's dataset, by its config block: held in memory as Arrays, or streamed from disk.

The one entry point the trainers use; it only decides which path applies:
- too large for memory (data/streamed.py `should_stream`): StreamedData, read batch by batch;
- images and text (data/preprocess.py): the paper's preprocessing;
- anything else: the stored tensors as they are (`raw_arrays`).
"""

from __future__ import annotations

import numpy as np

from batch_science.config import dataset_name
from batch_science.data import preprocess, streamed
from batch_science.data.arrays import Arrays, class_positions, train_subset_size
from batch_science.data.tfds_access import dataset_builder as builder_of
from batch_science.data.tfds_access import dataset_kind, num_classes, prepare, split_arrays

__all__ = ["load", "prepare"]


def load(spec: dict, data_dir: str, config_dir: str | None = None) -> Arrays | streamed.StreamedData:
    """Arrays of a workload's `dataset` config block (name, builder or npz; splits, optional
    training subset), or, for a dataset too large for memory, its StreamedData."""
    dataset_builder = builder_of(spec, data_dir, config_dir)
    if not dataset_builder.is_prepared():
        raise FileNotFoundError(
            f"dataset '{dataset_name(spec)}' is not prepared in {data_dir} (run the prepare_data rule)"
        )
    if streamed.should_stream(spec, dataset_builder):
        return streamed.StreamedData.load(spec, dataset_builder, data_dir)
    if preprocess.applies(spec, dataset_builder):
        return preprocess.load_arrays(dataset_builder, spec, data_dir)
    return raw_arrays(dataset_builder, spec)


def raw_arrays(dataset_builder, spec: dict) -> Arrays:
    """The stored tensors as they are: the `classes` subset of both splits first, then the training
    subset, in stored order (as the streamed and the preprocessed paths keep them)."""
    splits = [spec.get("train_split", "train"), spec.get("validation_split", "validation")]
    (x_train, y_train), (x_validation, y_validation) = (split_arrays(dataset_builder, split) for split in splits)
    classes = num_classes(dataset_builder)
    if spec.get("classes"):
        train_kept, validation_kept = (
            class_positions(y_train, spec["classes"]),
            class_positions(y_validation, spec["classes"]),
        )
        x_train, y_train = x_train[train_kept], y_train[train_kept]
        x_validation, y_validation = x_validation[validation_kept], y_validation[validation_kept]
        classes = min(classes, spec["classes"])
    keep = train_subset_size(spec, len(x_train))
    x_train, y_train = x_train[:keep], y_train[:keep]
    return Arrays(x_train, y_train.astype(np.int32), x_validation, y_validation.astype(np.int32), classes)


def declared_input(spec: dict, data_dir: str, config_dir: str | None = None) -> tuple[tuple[int, ...], int] | None:
    """(input shape, classes) of a workload's examples as the dataset's features declare them, known
    before it is prepared; None where preprocessing decides them (text, images resized to image_size)."""
    dataset_builder = builder_of(spec, data_dir, config_dir)
    kind = dataset_kind(dataset_builder)
    shape = dataset_builder.info.features[dataset_builder.info.supervised_keys[0]].shape
    if kind.text or (kind.images and spec.get("image_size")) or None in shape:
        return None
    classes = num_classes(dataset_builder)
    return tuple(shape), min(classes, spec.get("classes") or classes)
