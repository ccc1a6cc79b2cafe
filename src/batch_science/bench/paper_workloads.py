"""The paper's models in `make bench`: each on mock data of its real input shape, and the same
network written as a plain Keras model for the `model.fit` baseline.

The Keras networks have the engine model's layers, widths and FLOPs (models/paper.py); they
differ only where Keras has no twin of a detail that costs next to nothing: batch norm keeps
moving averages (the engine evaluates with precise BN), the Transformer learns its positions
and unties its read-out from the embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from batch_science.data.arrays import Arrays

# Mock examples per run: enough distinct batches. The validation set is evaluated every EVAL_EVERY
# steps, the fewest between evaluations in config/paper.yaml (which evaluates about once an epoch).
TRAIN_EXAMPLES = 2048
VALIDATION_EXAMPLES = 256
EVAL_EVERY = 20


@dataclass(frozen=True)
class PaperWorkload:
    """A paper model at a bench size: its registry spec, input shape and classes (the vocabulary for LMs)."""

    name: str
    model: dict
    input_shape: tuple[int, ...]
    num_classes: int
    language_model: bool = False


PAPER_WORKLOADS = {
    w.name: w
    for w in (
        PaperWorkload("simple_cnn_base", {"name": "simple_cnn"}, (28, 28, 1), 10),
        PaperWorkload("resnet_8", {"name": "resnet_8"}, (32, 32, 3), 10),
        # The language models at a small size: one sequence length of 32 tokens, a vocabulary of 256.
        PaperWorkload(
            "lstm_lm_small", {"name": "lstm_lm", "layers": 2, "hidden": 128, "embedding": 64}, (32,), 256, True
        ),
        PaperWorkload(
            "transformer_lm_small",
            {"name": "transformer_lm", "size": "narrow_and_shallow", "d_model": 128, "heads": 4, "d_ff": 512},
            (32,),
            256,
            True,
        ),
    )
}


def mock_arrays(workload: PaperWorkload, seed: int = 0) -> Arrays:
    """Random inputs of the workload's shape and random labels (next tokens for a language model)."""
    rng = np.random.default_rng(seed)

    def split(n):
        if workload.language_model:
            tokens = rng.integers(0, workload.num_classes, (n, workload.input_shape[0] + 1))
            return tokens[:, :-1].astype(np.float32), tokens[:, 1:].astype(np.int32)
        return rng.random((n, *workload.input_shape), dtype=np.float32), rng.integers(0, workload.num_classes, n)

    x_train, y_train = split(TRAIN_EXAMPLES)
    x_validation, y_validation = split(VALIDATION_EXAMPLES)
    return Arrays(x_train, y_train, x_validation, y_validation, workload.num_classes)


def keras_network(workload: PaperWorkload, model):
    """The engine's `model` (a models/paper.py object) as a Keras model of the same layers."""
    import keras
    from keras import layers

    inputs = keras.Input(workload.input_shape, dtype="int32" if workload.language_model else "float32")
    kind = workload.model["name"]
    if kind == "simple_cnn":
        x = inputs
        for filters in model.filters:
            x = layers.Conv2D(filters, model.kernel, padding="same", activation="relu", kernel_initializer="he_normal")(
                x
            )
            x = layers.MaxPooling2D(2, padding="same")(x)
        x = layers.Dense(model.dense, activation="relu", kernel_initializer="he_normal")(layers.Flatten()(x))
        outputs = layers.Dense(workload.num_classes)(x)
    elif kind == "resnet_8":
        outputs = _keras_resnet(layers, inputs, model, workload.num_classes)
    elif kind == "lstm_lm":
        x = layers.Embedding(workload.num_classes, model.embedding)(inputs)
        for _ in range(model.layers):
            x = layers.LSTM(model.hidden, return_sequences=True)(x)
        outputs = layers.Dense(workload.num_classes)(x)
    elif kind == "transformer_lm":
        outputs = _keras_transformer(keras, layers, inputs, model, workload)
    else:
        raise ValueError(f"no Keras twin of model '{kind}'")
    return keras.Model(inputs, outputs)


def _keras_resnet(layers, inputs, model, num_classes):
    """ResNet v1 basic blocks, batch norm after every convolution, 1x1 projections (models/paper.py ResNet)."""

    def conv_bn(x, width, kernel, stride):
        x = layers.Conv2D(width, kernel, stride, padding="same", use_bias=False, kernel_initializer="he_normal")(x)
        return layers.BatchNormalization(epsilon=1e-5)(x)

    x = layers.ReLU()(conv_bn(inputs, model.widths[0], 3, 1))
    c_in = model.widths[0]
    for stage, (n_blocks, width) in enumerate(zip(model.blocks, model.widths)):
        for block in range(n_blocks):
            stride = 2 if (block == 0 and stage > 0) else 1
            h = conv_bn(layers.ReLU()(conv_bn(x, width, 3, stride)), width, 3, 1)
            if c_in != width or stride == 2:
                x = conv_bn(x, width, 1, stride)
            x = layers.ReLU()(layers.Add()([x, h]))
            c_in = width
    return layers.Dense(num_classes)(layers.GlobalAveragePooling2D()(x))


def _keras_transformer(keras, layers, inputs, model, workload):
    """Pre-layer-norm causal blocks of attention and a ReLU feed-forward layer (models/paper.py TransformerLm)."""
    n_layers, d, heads, d_ff = model.dims
    length = workload.input_shape[0]

    class AddLearnedPositions(layers.Layer):
        def build(self, input_shape):
            self.positions = self.add_weight(shape=(length, d), initializer="random_normal")

        def call(self, x):
            return x + self.positions

    h = AddLearnedPositions()(layers.Embedding(workload.num_classes, d)(inputs))
    for _ in range(n_layers):
        a = layers.LayerNormalization(epsilon=1e-6)(h)
        h = h + layers.MultiHeadAttention(heads, d // heads)(a, a, use_causal_mask=True)
        a = layers.LayerNormalization(epsilon=1e-6)(h)
        h = h + layers.Dense(d)(layers.Dense(d_ff, activation="relu")(a))
    return layers.Dense(workload.num_classes)(layers.LayerNormalization(epsilon=1e-6)(h))
