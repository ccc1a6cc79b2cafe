"""Your own model, measured by the pipeline: a function that returns an uncompiled Keras model.

The study config names it by import path, `model: {keras: "model:small_cnn", channels: 16}`;
every other key of that block is a keyword argument here. The module is found in the config
file's folder (this one), or on PYTHONPATH. The model must output logits, one per class (no
softmax): the engine adds the cross-entropy loss, and trains it with every trial's own seed,
learning rate and schedule (the weights are drawn by Keras's initialisers, seeded per trial).
"""

import keras


def small_cnn(channels: int = 16, kernel: int = 5, dense: int = 32, classes: int = 10, length: int = 40):
    """A small 1-D CNN for MNIST-1D's 40-sample signals: two strided convolutions, a dense layer, logits."""
    return keras.Sequential(
        [
            keras.Input((length,)),
            keras.layers.Reshape((length, 1)),  # one input channel
            keras.layers.Conv1D(channels, kernel, strides=2, padding="same", activation="relu"),
            keras.layers.Conv1D(channels, kernel, strides=2, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(dense, activation="relu"),
            keras.layers.Dense(classes),  # logits
        ]
    )
