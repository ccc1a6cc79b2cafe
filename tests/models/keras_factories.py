"""Keras model factories the tests name by import path ("keras_factories:mlp"), as a user's module would be."""

import keras


def mlp(hidden=(100, 100), classes=10):
    """The native Mlp's network in Keras: ReLU dense layers and a linear read-out."""
    layers = [keras.layers.Dense(width, activation="relu") for width in hidden]
    return keras.Sequential([keras.Input((40,)), *layers, keras.layers.Dense(classes)])


def batch_norm_dropout(classes=10, rate=0.5):
    """Dense, batch norm, dropout, read-out: non-trainable state and training-time randomness."""
    return keras.Sequential(
        [
            keras.Input((40,)),
            keras.layers.Dense(16),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dropout(rate),
            keras.layers.Dense(classes),
        ]
    )


class TwoLayer(keras.Model):
    """A subclassed model, built only when first called."""

    def __init__(self, width, classes):
        super().__init__()
        self.hidden = keras.layers.Dense(width, activation="relu")
        self.logits = keras.layers.Dense(classes)

    def call(self, x, training=False):
        return self.logits(self.hidden(x))


def subclassed(width=16, classes=10):
    return TwoLayer(width, classes)


def not_a_model():
    return "a string"


def raises():
    raise RuntimeError("the factory's own error")
