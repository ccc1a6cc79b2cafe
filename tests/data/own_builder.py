"""A study's own tensorflow-datasets builder, as a user would write one beside their config
("own_builder:Points"): 3 classes of 2-D points, generated from a fixed seed."""

import numpy as np
import tensorflow_datasets as tfds


def points(n: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    return (rng.normal(size=(n, 2)) + 3 * labels[:, None]).astype(np.float32), labels


class Points(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "64 train and 32 validation points."}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "point": tfds.features.Tensor(shape=(2,), dtype=np.float32),
                    "label": tfds.features.ClassLabel(num_classes=3),
                }
            ),
            supervised_keys=("point", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(*points(64, 0)), "validation": self._generate_examples(*points(32, 1))}

    def _generate_examples(self, xs, ys):
        for index, (x, y) in enumerate(zip(xs, ys)):
            yield index, {"point": x, "label": int(y)}


NOT_A_BUILDER = 42
