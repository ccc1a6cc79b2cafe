"""A study's own arrays, `dataset: {npz: path}`, as a tensorflow-datasets builder, so they are
prepared, stored and read (held in memory or streamed, with training subsets and class subsets)
exactly as a tfds dataset is.

The file holds `x_train`, `y_train`, `x_validation`, `y_validation` (integer labels from 0).
Each file gets its own builder config, named after the file and a digest of its content, so an
edited file is prepared afresh instead of read from an earlier preparation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

ARRAYS = ("x_train", "y_train", "x_validation", "y_validation")


def read_arrays(path: str) -> dict[str, np.ndarray]:
    """The four arrays of an npz file; ValueError naming what is missing or inconsistent."""
    try:
        with np.load(path) as stored:
            missing = [key for key in ARRAYS if key not in stored.files]
            if missing:
                raise ValueError(f"{path}: no array {', '.join(missing)} (it needs {', '.join(ARRAYS)})")
            arrays = {key: stored[key] for key in ARRAYS}
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None
    for split in ("train", "validation"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
            raise ValueError(f"{path}: y_{split} must hold one integer label >= 0 per row of x_{split}")
    if arrays["x_train"].shape[1:] != arrays["x_validation"].shape[1:]:
        raise ValueError(f"{path}: x_train and x_validation examples differ in shape")
    return arrays


def npz_config(path: str) -> NpzConfig:
    """The builder config of one file: named after its stem and content."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(path).stem)
    return NpzConfig(name=f"{stem}_{digest}", path=str(Path(path).resolve()))


@dataclasses.dataclass
class NpzConfig(tfds.core.BuilderConfig):
    path: str = ""


class NpzArrays(tfds.core.GeneratorBasedBuilder):
    """Train and validation arrays from an .npz file (see the module docstring)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "x_train, y_train, x_validation, y_validation of one .npz file."}

    def _info(self) -> tfds.core.DatasetInfo:
        arrays = read_arrays(self.builder_config.path)
        x = arrays["x_train"]
        classes = int(max(arrays["y_train"].max(initial=0), arrays["y_validation"].max(initial=0))) + 1
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"Arrays of {self.builder_config.path}.",
            features=tfds.features.FeaturesDict(
                {
                    "input": tfds.features.Tensor(shape=x.shape[1:], dtype=x.dtype),
                    "label": tfds.features.ClassLabel(num_classes=classes),
                }
            ),
            supervised_keys=("input", "label"),
        )

    def _split_generators(self, dl_manager):
        arrays = read_arrays(self.builder_config.path)
        return {
            split: self._generate_examples(arrays[f"x_{split}"], arrays[f"y_{split}"])
            for split in ("train", "validation")
        }

    def _generate_examples(self, inputs, labels):
        for index, (x, label) in enumerate(zip(inputs, labels)):
            yield index, {"input": x, "label": int(label)}
