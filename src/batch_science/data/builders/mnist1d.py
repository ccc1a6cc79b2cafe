"""MNIST-1D (Greydanus 2020) as a local tensorflow-datasets builder.

The examples are generated procedurally by the `mnist1d` package on this machine, never
downloaded, so the default study runs offline through the same tfds data path as real datasets.
More examples than the standard 4,000 are generated so that large batch sizes are meaningful.
"""

import numpy as np
import tensorflow_datasets as tfds

TRAIN_EXAMPLES = 16_000
VALIDATION_EXAMPLES = 2_000
GENERATOR_SEED = 42  # mnist1d's own default seed


def generate(
    train_examples: int = TRAIN_EXAMPLES, validation_examples: int = VALIDATION_EXAMPLES, seed: int = GENERATOR_SEED
):
    """Arrays (x_train, y_train, x_validation, y_validation) from mnist1d's generator, offline."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    total = train_examples + validation_examples
    args.num_samples = total
    args.train_split = train_examples / total
    args.seed = seed
    data = make_dataset(args)  # make_dataset never touches the network; get_dataset would download.
    return (
        data["x"].astype(np.float32),
        data["y"].astype(np.int64),
        data["x_test"].astype(np.float32),
        data["y_test"].astype(np.int64),
    )


class Mnist1d(tfds.core.GeneratorBasedBuilder):
    """MNIST-1D: 40-sample 1-D signals of the ten digit templates, generated locally."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": f"{TRAIN_EXAMPLES} train and {VALIDATION_EXAMPLES} validation examples, "
        f"generator seed {GENERATOR_SEED}."
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="MNIST-1D generated offline by the mnist1d package (Greydanus 2020).",
            features=tfds.features.FeaturesDict(
                {
                    "signal": tfds.features.Tensor(shape=(40,), dtype=np.float32),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("signal", "label"),
            homepage="https://github.com/greydanus/mnist1d",
        )

    def _split_generators(self, dl_manager):
        x_train, y_train, x_validation, y_validation = generate()
        return {
            "train": self._generate_examples(x_train, y_train),
            "validation": self._generate_examples(x_validation, y_validation),
        }

    def _generate_examples(self, signals, labels):
        for index, (signal, label) in enumerate(zip(signals, labels)):
            yield index, {"signal": signal, "label": int(label)}
