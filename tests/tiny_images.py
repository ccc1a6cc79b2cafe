"""A tiny local tfds image builder: variable-size RGB images like ImageNet's, generated, never downloaded."""

import numpy as np
import tensorflow_datasets as tfds

TRAIN_EXAMPLES, VALIDATION_EXAMPLES, CLASSES = 96, 24, 3


class TinyImages(tfds.core.GeneratorBasedBuilder):
    """Images of 10-20 pixels a side whose mean brightness in one channel tells the class."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(num_classes=CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(0, TRAIN_EXAMPLES),
            "validation": self._generate_examples(1, VALIDATION_EXAMPLES),
        }

    def _generate_examples(self, seed, n):
        rng = np.random.default_rng(seed)
        for index in range(n):
            label = int(rng.integers(CLASSES))
            height, width = rng.integers(10, 21, size=2)
            image = rng.integers(0, 160, size=(height, width, 3))
            image[..., label] += 90
            yield index, {"image": image.astype(np.uint8), "label": label}
