"""A dataset held in memory, and the training subsets of dataset-size studies."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from batch_science.config import dataset_name


@dataclass
class Arrays:
    """A dataset held in memory: training and validation examples with integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray
    num_classes: int
    # Device-side augmentation of a training batch, augment(x [trials, batch, ...], seeds [trials], step),
    # or None (see data/preprocess.py augment_batch).
    augment: Callable | None = None


def class_positions(labels, classes: int) -> np.ndarray:
    """Positions, in stored order, of the examples of the first `classes` classes (labels below it)."""
    return np.flatnonzero(np.asarray(labels) < classes)


def train_subset_size(spec: dict, n_available: int) -> int:
    """Training examples a workload's dataset block keeps (train_examples or train_fraction; the first ones)."""
    if spec.get("train_examples"):
        if spec["train_examples"] > n_available:
            split = spec.get("train_split", "train")
            raise ValueError(
                f"dataset '{dataset_name(spec)}': train_examples {spec['train_examples']} exceeds the {n_available} in "
                f"split '{split}'"
            )
        return int(spec["train_examples"])
    if spec.get("train_fraction"):
        return max(1, int(math.floor(spec["train_fraction"] * n_available)))
    return n_available
