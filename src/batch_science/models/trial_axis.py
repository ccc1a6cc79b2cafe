"""Models written with a leading trial axis on every weight, so many trials train in one graph.

A model is a pair of pure functions: `init(seed, input_shape, num_classes)` gives one
trial's weights (so a trial's initialisation never depends on which trials share its graph),
and `apply(weights, x, shared)` maps inputs to logits [trials, batch, classes] for all trials. `x` is either shared by
all trials, shape [batch, ...], or per trial, shape [trials, batch, ...]. Weights are lists of
tensors of shape [trials, ...]. Registered by name in models/registry.py with their size knobs.

A model that cannot carry a trial axis (a Keras network, say) sets `max_trials_per_graph = 1`:
the engine then gives it graphs of one trial, with the same calling convention (a trial axis of
length 1 on weights, per-trial inputs and logits), and still runs each trial as one compiled loop.
`flops_per_example(input_shape, num_classes)` is the forward pass of one example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, shape) -> np.ndarray:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def _he_normal(rng: np.random.Generator, fan_in: int, shape) -> np.ndarray:
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)


def _dense(x, kernel, bias):
    """Each trial's dense layer on its own batch: x [trials, batch, in] -> [trials, batch, out]."""
    import tensorflow as tf

    return tf.einsum("tbi,tio->tbo", x, kernel) + bias[:, None, :]


def _one_trial_at_a_time(apply_one, weights, x):
    """Logits [trials, batch, classes] of inputs shared by all trials (evaluation), one trial after
    another in a graph loop: a trial's activations on the whole validation set stay in cache, where
    all trials' at once ([trials, examples, width]) do not; the MLP evaluated ~25% faster so."""
    import tensorflow as tf

    return tf.map_fn(lambda trial_weights: apply_one(trial_weights, x), weights, fn_output_signature=x.dtype)


@dataclass(frozen=True)
class Mlp:
    """Fully connected ReLU network; `hidden` lists the widths of the hidden layers."""

    hidden: tuple[int, ...] = (100, 100)

    def layer_sizes(self, input_shape, num_classes):
        return [int(np.prod(input_shape)), *self.hidden, num_classes]

    def init(self, seed: int, input_shape, num_classes: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        sizes = self.layer_sizes(input_shape, num_classes)
        weights = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            weights += [_he_normal(rng, fan_in, (fan_in, fan_out)), np.zeros(fan_out)]
        return weights

    def apply(self, weights, x, shared: bool):
        import tensorflow as tf

        if shared:
            return _one_trial_at_a_time(self._apply_one, weights, tf.reshape(x, [x.shape[0], -1]))
        x = tf.reshape(x, [x.shape[0], -1, int(np.prod(x.shape[2:]))])
        for layer in range(0, len(weights), 2):
            x = _dense(x, weights[layer], weights[layer + 1])
            if layer + 2 < len(weights):
                x = tf.nn.relu(x)
        return x

    def _apply_one(self, weights, x):
        """One trial's logits, weights without the trial axis, x [batch, features]."""
        import tensorflow as tf

        for layer in range(0, len(weights), 2):
            x = tf.matmul(x, weights[layer]) + weights[layer + 1]
            if layer + 2 < len(weights):
                x = tf.nn.relu(x)
        return x

    def flops_per_example(self, input_shape, num_classes) -> int:
        sizes = self.layer_sizes(input_shape, num_classes)
        return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


@dataclass(frozen=True)
class Cnn1d:
    """Small 1-D CNN (as in the MNIST-1D paper): strided convolutions, ReLU, a dense read-out.

    Convolutions are written as patch extraction + einsum, so the trial axis stays a batched
    matrix multiply (grouped or vectorised-map convolutions are far slower under XLA on CPU).
    """

    channels: tuple[int, ...] = (25, 25, 25)
    kernel: int = 5
    stride: int = 2

    def _lengths(self, length: int) -> list[int]:
        lengths = [length]
        for _ in self.channels:
            lengths.append((lengths[-1] + 2 * (self.kernel // 2) - self.kernel) // self.stride + 1)
        return lengths

    def init(self, seed: int, input_shape, num_classes: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        weights, in_channels = [], 1
        for out_channels in self.channels:
            fan_in = self.kernel * in_channels
            weights += [_he_normal(rng, fan_in, (fan_in, out_channels)), np.zeros(out_channels)]
            in_channels = out_channels
        fan_in = self._lengths(input_shape[0])[-1] * in_channels
        weights += [_glorot_uniform(rng, fan_in, num_classes, (fan_in, num_classes)), np.zeros(num_classes)]
        return weights

    def _patches(self, x):
        """[..., length, channels] -> [..., out_length, kernel * channels] for a 'same'-padded strided conv.

        Built from `kernel` strided slices joined on the channel axis (kernel-major, as the
        weights are laid out): XLA fuses slices into the consumer, where a gather of patch
        indices made the CNN several times slower per FLOP than the MLP.
        """
        import tensorflow as tf

        length = x.shape[-2]
        pad = self.kernel // 2
        out_length = (length + 2 * pad - self.kernel) // self.stride + 1
        paddings = [[0, 0]] * (len(x.shape) - 2) + [[pad, pad], [0, 0]]
        x = tf.pad(x, paddings)
        span = self.stride * (out_length - 1) + 1
        return tf.concat([x[..., offset : offset + span : self.stride, :] for offset in range(self.kernel)], axis=-1)

    def apply(self, weights, x, shared: bool):
        import tensorflow as tf

        if shared:
            # With the native convolution; batching trials here would also materialise patch
            # tensors of trials x examples (it ran at a fifth of the MLP's FLOP rate).
            return _one_trial_at_a_time(self._apply_one, weights, x)
        x = x[..., None]  # one input channel
        for layer in range(0, len(weights) - 2, 2):
            patches = self._patches(x)
            x = tf.nn.relu(tf.einsum("tblk,tkc->tblc", patches, weights[layer]) + weights[layer + 1][:, None, None, :])
        x = tf.reshape(x, [x.shape[0], -1, x.shape[2] * x.shape[3]])
        return _dense(x, weights[-2], weights[-1])

    def _apply_one(self, weights, x):
        """One trial's logits, weights without the trial axis, x [batch, length]."""
        import tensorflow as tf

        h, pad = x[..., None], self.kernel // 2
        for layer in range(0, len(weights) - 2, 2):
            kernel = tf.reshape(weights[layer], [self.kernel, h.shape[-1], -1])
            h = tf.pad(h, [[0, 0], [pad, pad], [0, 0]])
            h = tf.nn.relu(tf.nn.conv1d(h, kernel, self.stride, "VALID") + weights[layer + 1])
        return tf.matmul(tf.reshape(h, [-1, h.shape[1] * h.shape[2]]), weights[-2]) + weights[-1]

    def flops_per_example(self, input_shape, num_classes) -> int:
        lengths, flops, in_channels = self._lengths(input_shape[0]), 0, 1
        for out_length, out_channels in zip(lengths[1:], self.channels):
            flops += 2 * out_length * self.kernel * in_channels * out_channels
            in_channels = out_channels
        return flops + 2 * lengths[-1] * in_channels * num_classes
