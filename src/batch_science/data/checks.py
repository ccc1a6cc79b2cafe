"""A workload's dataset block checked against its builder, without the network and without reading
the data: the builder's name and its label classes always; once the dataset is prepared, its split
names, the training subset and the batch sizes against the training examples.

`tuning.study_config.check_study` calls this before any job runs (sizes of datasets prepared by
then), and the prepare_data rule again once it has prepared a dataset, before any training.
"""

from __future__ import annotations

import contextlib
import logging

from batch_science.config import ConfigError, dataset_name
from batch_science.data.arrays import train_subset_size
from batch_science.data.tfds_access import builder, dataset_builder, dataset_kind

SPLIT_DEFAULTS = {"train_split": "train", "validation_split": "validation"}


@contextlib.contextmanager
def quiet_tfds():
    """tfds warns of every dataset not prepared yet, which is no news before a run prepares it."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl.setLevel(level)


def check_dataset(spec: dict, data_dir: str, key: str, batch_sizes, config_dir: str | None = None) -> None:
    """Raise ConfigError naming the key under `key` (a workload's) if the dataset cannot serve it
    (a builder module or npz file was opened by study_config.check_own_datasets already)."""
    name = dataset_name(spec)
    try:
        with quiet_tfds():
            found = builder(spec["name"], data_dir) if "name" in spec else dataset_builder(spec, data_dir, config_dir)
            prepared = found.is_prepared()
    except ValueError:
        raise ConfigError(
            f"config key {key}.dataset.name: unknown dataset '{spec['name']}' (a tensorflow-datasets name, "
            "e.g. mnist, or built in: mnist1d, synthetic_text, nqm)"
        ) from None
    try:
        kind = dataset_kind(found)
    except ValueError as error:
        raise ConfigError(f"config key {key}.dataset.name: {error}") from None
    if spec.get("classes") and not kind.text:
        label = found.info.features[found.info.supervised_keys[1]]
        if spec["classes"] > label.num_classes:
            raise ConfigError(
                f"config key {key}.dataset.classes: {spec['classes']} is above the {label.num_classes} classes of "
                f"'{name}' (allowed: 2 to {label.num_classes})"
            )
    if not prepared:
        return  # split names and sizes are known once prepared; prepare_data checks them then
    splits = found.info.splits
    sizes = {}
    for split_key, default in SPLIT_DEFAULTS.items():
        split = spec.get(split_key, default)
        try:
            sizes[split_key] = splits[split].num_examples
        except (KeyError, ValueError, AssertionError):
            raise ConfigError(
                f"config key {key}.dataset.{split_key}: no split '{split}' in '{name}' "
                f"(splits: {', '.join(splits)}, or a slice such as train[:80%])"
            ) from None
    try:
        n_train = train_subset_size(spec, sizes["train_split"])
    except ValueError as error:
        raise ConfigError(f"config key {key}.dataset.train_examples: {error}") from None
    if kind.text:
        return  # text becomes sequences of tokens: their number is known once tokenized (the tune job checks)
    check_batch_sizes(batch_sizes, n_train, key, name)  # with `classes`, n_train is an upper bound


def check_batch_sizes(batch_sizes, n_train: int, key: str, dataset: str) -> None:
    """Every batch size at most the training examples (the tune job checks the exact subset again)."""
    too_big = [b for b in batch_sizes if b > n_train]
    if too_big:
        raise ConfigError(
            f"config key {key}.batch_sizes: batch size {too_big[0]} is above the {n_train} training examples "
            f"of '{dataset}'"
        )
