"""The paper's models, written to models/trial_axis.py's interface so the engine can train them.

`init(seed, input_shape, num_classes)` gives ONE trial's weights as numpy arrays;
`apply(weights, x, shared)` maps inputs to logits with a leading trial axis (weights are lists
of tensors [trials, ...]; x is [batch, ...] when shared by all trials, else [trials, batch, ...]);
`flops_per_example(input_shape, num_classes)` is the forward multiply-adds x 2.

Each trial runs through the same single-trial function (a Python loop over the static trial
axis), so batch statistics stay per trial. Models big enough that one trial fills an
accelerator set `max_trials_per_graph = 1`.

Batch norm: the engine keeps no non-trained state, so there are no running averages. In
training (`shared=False`) statistics come from each (ghost) batch. At evaluation a model with
batch norm normalises with population statistics instead, so a validation metric does not depend
on how the validation set is cut into batches: "precise BN" (Wu & Johnson 2021). Before each
evaluation `batch_norm_statistics(weights, x)` measures every batch-norm layer's mean and variance
over a fixed set of training examples (training/engine.py's batch_norm_sample) with the current
weights, in one pass normalised by those same statistics; `apply(..., shared=True,
statistics=...)` then uses them. They are recomputed from the weights each time rather than kept
as moving averages, so the models stay pure functions and a trial's evaluation depends only on
its own weights. Without `statistics` the
evaluation batch's own statistics are used. Ghost batch norm (Hoffer et al. 2017) splits the
training batch into ghost batches of `ghost_batch_size` examples, each normalised on its own (when
the batch is a larger multiple of it; otherwise the whole batch is one).

Sizes follow the paper's model names where the paper states them (PAPER.md lists the
names); sizes marked "recalled, unconfirmed" in the class docstrings are not confirmed from a
primary source. Language models take token ids (as floats, as the engine feeds inputs) of
shape [batch, length] and give logits [trials, batch, length, vocab]: the next-token
prediction at every position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from batch_science.models.trial_axis import Mlp

BN_EPSILON = 1e-5


# -- weights described once: shapes drive init, parameter counts and unpacking -------------


@dataclass(frozen=True)
class Weight:
    name: str
    shape: tuple[int, ...]
    init: str  # he, glorot, zeros, ones, embedding, lstm
    fan_in: int = 1
    fan_out: int = 1


def _initial(rng: np.random.Generator, weight: Weight) -> np.ndarray:
    if weight.init == "zeros":
        return np.zeros(weight.shape)
    if weight.init == "ones":
        return np.ones(weight.shape)
    if weight.init == "he":
        return rng.normal(0.0, math.sqrt(2.0 / weight.fan_in), size=weight.shape)
    if weight.init == "embedding":
        return rng.normal(0.0, weight.shape[-1] ** -0.5, size=weight.shape)
    if weight.init == "forget_bias":  # LSTM bias: forget gate starts at 1
        bias = np.zeros(weight.shape)
        hidden = weight.shape[0] // 4
        bias[hidden : 2 * hidden] = 1.0
        return bias
    limit = math.sqrt(6.0 / (weight.fan_in + weight.fan_out))  # glorot uniform
    return rng.uniform(-limit, limit, size=weight.shape)


class _PaperModel:
    """Shared init / parameter count / per-trial apply; subclasses give `weights` and `forward`."""

    max_trials_per_graph: int | None = None

    def weights(self, input_shape, num_classes) -> list[Weight]:
        raise NotImplementedError

    def forward(self, w: dict, x, training: bool):
        """Logits of one trial: w maps weight names to tensors without the trial axis."""
        raise NotImplementedError

    def init(self, seed: int, input_shape, num_classes: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [_initial(rng, weight) for weight in self.weights(tuple(input_shape), num_classes)]

    def parameter_count(self, input_shape, num_classes: int) -> int:
        return sum(int(np.prod(w.shape)) for w in self.weights(tuple(input_shape), num_classes))

    def apply(self, weights, x, shared: bool, statistics=None):
        """Logits of every trial; `statistics` (from batch_norm_statistics, [trials, ...] tensors)
        replaces batch statistics in batch-norm layers."""
        import tensorflow as tf

        n_trials = weights[0].shape[0]
        names = self._names

        def of_trial(tensor, trial):
            # A graph of one trial reshapes its trial axis away: in a plain graph a slice copies
            # every weight and its gradient at each step.
            return tf.reshape(tensor, tensor.shape[1:]) if n_trials == 1 else tensor[trial]

        outputs = []
        for trial in range(n_trials):
            w = {name: of_trial(tensor, trial) for name, tensor in zip(names, weights)}
            options = {} if statistics is None else {"statistics": [of_trial(s, trial) for s in statistics]}
            outputs.append(self.forward(w, x if shared else of_trial(x, trial), training=not shared, **options))
        return tf.reshape(outputs[0], [1, *outputs[0].shape]) if n_trials == 1 else tf.stack(outputs)

    @property
    def _names(self) -> list[str]:
        # Names do not depend on input shape or classes; any shapes give them in order.
        return [w.name for w in self.weights(self._probe_shape, 2)]

    _probe_shape: tuple[int, ...] = (32, 32, 3)


def _conv_weight(name, kernel, c_in, c_out) -> Weight:
    return Weight(name, (kernel, kernel, c_in, c_out), "he", fan_in=kernel * kernel * c_in)


def _dense_weights(name, n_in, n_out, init="glorot") -> list[Weight]:
    return [
        Weight(f"{name}/kernel", (n_in, n_out), init, fan_in=n_in, fan_out=n_out),
        Weight(f"{name}/bias", (n_out,), "zeros"),
    ]


def _norm_weights(name, channels) -> list[Weight]:
    return [Weight(f"{name}/gamma", (channels,), "ones"), Weight(f"{name}/beta", (channels,), "zeros")]


def _batch_norm(tf, x, gamma, beta, ghost_batch_size: int | None, training: bool, statistics=None):
    """Normalise with `statistics` (mean, variance) when given, else with the (ghost) batch's own."""
    batch = x.shape[0]
    if (
        statistics is None
        and training
        and ghost_batch_size
        and batch is not None
        and batch > ghost_batch_size
        and batch % ghost_batch_size == 0
    ):
        ghosts = tf.reshape(x, [batch // ghost_batch_size, ghost_batch_size, *x.shape[1:]])
        mean, variance = tf.nn.moments(ghosts, axes=list(range(1, len(ghosts.shape) - 1)), keepdims=True)
        return tf.reshape((ghosts - mean) * tf.math.rsqrt(variance + BN_EPSILON), x.shape) * gamma + beta
    return _normalised(tf, x, gamma, beta, statistics)[0]


def _normalised(tf, x, gamma, beta, statistics=None):
    """(x normalised per channel with `statistics` (mean, variance), else with its own over every
    other axis; those statistics).

    A float32 image batch goes through TensorFlow's fused batch norm, one op forward and one
    backward (oneDNN on a CPU, cuDNN on a GPU): as separate moments and normalisation ops, batch
    norm cost ResNet-8 at batch 16 on a CPU a third of its training step. The fused op has no
    float64 kernel, so float64 runs keep the separate ops.
    """
    if len(x.shape) == 4 and x.dtype == tf.float32:
        fused = tf.compat.v1.nn.fused_batch_norm
        if statistics is not None:
            mean, variance = statistics
            return fused(x, gamma, beta, mean, variance, BN_EPSILON, is_training=False)[0], statistics
        y, mean, variance = fused(x, gamma, beta, epsilon=BN_EPSILON, is_training=True)
        n = x.shape[0] * x.shape[1] * x.shape[2]
        return y, (mean, variance * ((n - 1) / n))  # the op returns the unbiased variance
    mean, variance = statistics if statistics is not None else tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
    return (x - mean) * tf.math.rsqrt(variance + BN_EPSILON) * gamma + beta, (mean, variance)


def _pooled(size: int, times: int) -> int:
    for _ in range(times):
        size = math.ceil(size / 2)
    return size


# -- fully connected ---------------------------------------------------------------------


def fully_connected(depth: int = 3, width: int = 1024):
    """The paper's fully connected nets fc_<width>x<depth> (ReLU): Mlp with `depth` layers of `width`."""

    if depth < 1 or width < 1:
        raise TypeError(f"depth and width must be positive, got depth={depth}, width={width}")
    return Mlp(hidden=(width,) * depth)


# -- simple CNN ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimpleCnn(_PaperModel):
    """Two 'same' conv layers (5x5, ReLU), each followed by 2x2 max pooling, a dense ReLU layer and a read-out.

    base: filters (32, 64), dense 1024; narrow: (16, 32), 512; wide: (64, 128), 2048
    (recalled, unconfirmed; the names are the release's simple_cnn_base/narrow/wide).
    """

    filters: tuple[int, ...] = (32, 64)
    dense: int = 1024
    kernel: int = 5

    def weights(self, input_shape, num_classes):
        height, width, channels = input_shape if len(input_shape) == 3 else (*input_shape, 1)
        out, c_in = [], channels
        for layer, c_out in enumerate(self.filters):
            out += [
                _conv_weight(f"conv{layer}/kernel", self.kernel, c_in, c_out),
                Weight(f"conv{layer}/bias", (c_out,), "zeros"),
            ]
            c_in = c_out
        flat = _pooled(height, len(self.filters)) * _pooled(width, len(self.filters)) * c_in
        return out + _dense_weights("dense", flat, self.dense, "he") + _dense_weights("logits", self.dense, num_classes)

    def forward(self, w, x, training):
        import tensorflow as tf

        if len(x.shape) == 3:
            x = x[..., None]
        for layer in range(len(self.filters)):
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w[f"conv{layer}/kernel"], 1, "SAME"), w[f"conv{layer}/bias"]))
            x = tf.nn.max_pool2d(x, 2, 2, "SAME")
        x = tf.reshape(x, [x.shape[0], -1])
        x = tf.nn.relu(x @ w["dense/kernel"] + w["dense/bias"])
        return x @ w["logits/kernel"] + w["logits/bias"]

    def flops_per_example(self, input_shape, num_classes) -> int:
        height, width, c_in = input_shape if len(input_shape) == 3 else (*input_shape, 1)
        flops = 0
        for layer, c_out in enumerate(self.filters):
            h, v = _pooled(height, layer), _pooled(width, layer)
            flops += 2 * h * v * self.kernel**2 * c_in * c_out
            c_in = c_out
        flat = _pooled(height, len(self.filters)) * _pooled(width, len(self.filters)) * c_in
        return flops + 2 * (flat * self.dense + self.dense * num_classes)


# -- ResNets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResNet(_PaperModel):
    """ResNet v1 (He et al. 2016) with batch norm after every convolution.

    `bottleneck=False`: CIFAR-style basic blocks on a 3x3 stem (ResNet-8 = one block per stage,
    widths 16/32/64). `bottleneck=True`: ImageNet-style 7x7/2 stem, 3x3/2 max pool and
    bottleneck blocks (ResNet-50 = 3, 4, 6, 3 blocks, widths 64..512, 4x expansion). Shape
    changes go through 1x1 projection shortcuts. `ghost_batch_size` switches on ghost batch norm.
    """

    blocks: tuple[int, ...] = (1, 1, 1)
    widths: tuple[int, ...] = (16, 32, 64)
    bottleneck: bool = False
    ghost_batch_size: int | None = None

    def _stem_width(self):
        return self.widths[0]

    def weights(self, input_shape, num_classes):
        channels = input_shape[-1]
        out = [
            _conv_weight("stem/kernel", 7 if self.bottleneck else 3, channels, self._stem_width()),
            *_norm_weights("stem/bn", self._stem_width()),
        ]
        c_in = self._stem_width()
        for stage, (n_blocks, width) in enumerate(zip(self.blocks, self.widths)):
            for block in range(n_blocks):
                name = f"s{stage}b{block}"
                if self.bottleneck:
                    c_out = 4 * width
                    layers = [(1, c_in, width), (3, width, width), (1, width, c_out)]
                else:
                    c_out = width
                    layers = [(3, c_in, width), (3, width, width)]
                for i, (k, a, b) in enumerate(layers):
                    out += [_conv_weight(f"{name}/conv{i}", k, a, b), *_norm_weights(f"{name}/bn{i}", b)]
                if c_in != c_out or (block == 0 and stage > 0):
                    out += [
                        _conv_weight(f"{name}/projection", 1, c_in, c_out),
                        *_norm_weights(f"{name}/projection_bn", c_out),
                    ]
                c_in = c_out
        return out + _dense_weights("logits", c_in, num_classes)

    @property
    def _norm_names(self) -> list[str]:
        return [name[: -len("/gamma")] for name in self._names if name.endswith("/gamma")]

    def batch_norm_statistics(self, weights, x):
        """Population statistics for evaluation (precise BN, see the module docstring): each trial's
        mean and variance of every batch-norm input over the examples x, shared by all trials.
        A list of [trials, channels] tensors, mean and variance per layer, for apply(statistics=...)."""
        import tensorflow as tf

        names = self._names
        per_trial = []
        for trial in range(weights[0].shape[0]):
            measured: dict = {}
            self.forward(
                {name: tensor[trial] for name, tensor in zip(names, weights)}, x, training=False, measured=measured
            )
            per_trial.append([s for name in self._norm_names for s in measured[name]])
        return [tf.stack(column) for column in zip(*per_trial)]

    def forward(self, w, x, training, statistics=None, measured=None):
        """`statistics`: flat [mean, variance, ...] per batch-norm layer to normalise with; `measured`:
        a dict that receives each layer's (mean, variance) over x, which then normalises x."""
        import tensorflow as tf

        given = dict(zip(self._norm_names, zip(statistics[0::2], statistics[1::2]))) if statistics is not None else {}

        def bn(h, name):
            gamma, beta = w[f"{name}/gamma"], w[f"{name}/beta"]
            if measured is not None:
                h, measured[name] = _normalised(tf, h, gamma, beta)
                return h
            return _batch_norm(tf, h, gamma, beta, self.ghost_batch_size, training, given.get(name))

        stride = 2 if self.bottleneck else 1
        x = tf.nn.relu(bn(tf.nn.conv2d(x, w["stem/kernel"], stride, "SAME"), "stem/bn"))
        if self.bottleneck:
            x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        for stage, n_blocks in enumerate(self.blocks):
            for block in range(n_blocks):
                name = f"s{stage}b{block}"
                stride = 2 if (block == 0 and stage > 0) else 1
                n_convs = 3 if self.bottleneck else 2
                h = x
                for i in range(n_convs):
                    # The stride sits on the 3x3 convolution (the first one in a basic block).
                    conv_stride = stride if i == (1 if self.bottleneck else 0) else 1
                    h = bn(tf.nn.conv2d(h, w[f"{name}/conv{i}"], conv_stride, "SAME"), f"{name}/bn{i}")
                    if i < n_convs - 1:
                        h = tf.nn.relu(h)
                if f"{name}/projection" in w:
                    x = bn(tf.nn.conv2d(x, w[f"{name}/projection"], stride, "SAME"), f"{name}/projection_bn")
                x = tf.nn.relu(x + h)
        x = tf.reduce_mean(x, axis=[1, 2])
        return x @ w["logits/kernel"] + w["logits/bias"]

    def flops_per_example(self, input_shape, num_classes) -> int:
        # Convolutions dominate: each conv's multiply-adds at its output resolution.
        first = 2 if self.bottleneck else 1
        stem = (_pooled(input_shape[0], first - 1), _pooled(input_shape[1], first - 1))
        base = (_pooled(stem[0], first - 1), _pooled(stem[1], first - 1))  # after the max pool
        flops = 0
        for weight in self.weights(tuple(input_shape), num_classes):
            if len(weight.shape) != 4:
                continue
            if weight.name.startswith("stem"):
                pixels = stem[0] * stem[1]
            else:
                stage = int(weight.name[1 : weight.name.index("b")])
                pixels = _pooled(base[0], stage) * _pooled(base[1], stage)
            flops += 2 * pixels * int(np.prod(weight.shape))
        return flops + 2 * self.widths[-1] * (4 if self.bottleneck else 1) * num_classes


def resnet_8(ghost_batch_size: int | None = None, widths=(16, 32, 64)) -> ResNet:
    """ResNet-8 for CIFAR-10: 3x3 stem, one basic block per stage, read-out (1 + 3x2 + 1 = 8 layers)."""
    return ResNet(blocks=(1, 1, 1), widths=tuple(widths), bottleneck=False, ghost_batch_size=ghost_batch_size)


class ResNet50(ResNet):
    max_trials_per_graph = 1


def resnet_50(ghost_batch_size: int | None = 32, width: int = 64, blocks=(3, 4, 6, 3)) -> ResNet:
    """ResNet-50 for ImageNet; ghost batch norm over 32 examples by default (recalled, unconfirmed).

    `width` scales every stage (64 is the standard model); `blocks` shrinks it for tests only.
    """
    return ResNet50(
        blocks=tuple(blocks),
        widths=tuple(width * 2**i for i in range(4)),
        bottleneck=True,
        ghost_batch_size=ghost_batch_size,
    )


# -- VGG-11 --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vgg(_PaperModel):
    """VGG-11 (configuration A of Simonyan & Zisserman 2015): 8 3x3 conv layers in 5 pooled stages, 3 dense layers.

    No batch norm. `widths` and `dense` shrink it for tests; (64, 128, 256, 512, 512) and 4096 are the standard model.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    convs_per_stage: tuple[int, ...] = (1, 1, 2, 2, 2)
    dense: int = 4096
    max_trials_per_graph = 1

    def weights(self, input_shape, num_classes):
        out, c_in = [], input_shape[-1]
        for stage, (width, n) in enumerate(zip(self.widths, self.convs_per_stage)):
            for i in range(n):
                out += [
                    _conv_weight(f"s{stage}c{i}/kernel", 3, c_in, width),
                    Weight(f"s{stage}c{i}/bias", (width,), "zeros"),
                ]
                c_in = width
        flat = _pooled(input_shape[0], len(self.widths)) * _pooled(input_shape[1], len(self.widths)) * c_in
        return (
            out
            + _dense_weights("fc0", flat, self.dense, "he")
            + _dense_weights("fc1", self.dense, self.dense, "he")
            + _dense_weights("logits", self.dense, num_classes)
        )

    def forward(self, w, x, training):
        import tensorflow as tf

        for stage, n in enumerate(self.convs_per_stage):
            for i in range(n):
                x = tf.nn.relu(
                    tf.nn.bias_add(tf.nn.conv2d(x, w[f"s{stage}c{i}/kernel"], 1, "SAME"), w[f"s{stage}c{i}/bias"])
                )
            x = tf.nn.max_pool2d(x, 2, 2, "SAME")
        x = tf.reshape(x, [x.shape[0], -1])
        x = tf.nn.relu(x @ w["fc0/kernel"] + w["fc0/bias"])
        x = tf.nn.relu(x @ w["fc1/kernel"] + w["fc1/bias"])
        return x @ w["logits/kernel"] + w["logits/bias"]

    def flops_per_example(self, input_shape, num_classes) -> int:
        flops, c_in = 0, input_shape[-1]
        for stage, (width, n) in enumerate(zip(self.widths, self.convs_per_stage)):
            pixels = _pooled(input_shape[0], stage) * _pooled(input_shape[1], stage)
            for _ in range(n):
                flops += 2 * pixels * 9 * c_in * width
                c_in = width
        dense = [
            w for w in self.weights(tuple(input_shape), num_classes) if w.name.endswith("/kernel") and len(w.shape) == 2
        ]
        return flops + sum(2 * int(np.prod(w.shape)) for w in dense)


# -- language models -------------------------------------------------------------------------

TRANSFORMER_SIZES = {
    # name: (layers, d_model, heads, d_ff). Recalled, unconfirmed: base follows Vaswani et al.'s
    # base model; the others are the release's model names with sizes as we recall them.
    "base": (6, 512, 8, 2048),
    "shallow": (2, 512, 8, 2048),
    "narrow_and_shallow": (2, 256, 4, 1024),
    "wide": (6, 1024, 16, 4096),
}


def _layer_norm(tf, x, gamma, beta):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + 1e-6) * gamma + beta


def _token_ids(tf, x):
    return tf.cast(tf.round(x), tf.int32) if x.dtype.is_floating else tf.cast(x, tf.int32)


@dataclass(frozen=True)
class TransformerLm(_PaperModel):
    """Decoder-only Transformer language model: pre-layer-norm blocks of causal self-attention and a
    ReLU feed-forward layer, sinusoidal positions, output layer tied to the token embedding.

    `size` picks a preset of TRANSFORMER_SIZES; explicit layers/d_model/heads/d_ff override it.
    `num_classes` is the vocabulary size.
    """

    size: str = "base"
    layers: int | None = None
    d_model: int | None = None
    heads: int | None = None
    d_ff: int | None = None
    max_trials_per_graph = 1

    def __post_init__(self):
        if self.size not in TRANSFORMER_SIZES:
            raise TypeError(f"size '{self.size}' unknown (known: {', '.join(TRANSFORMER_SIZES)})")
        if self.dims[1] % self.dims[2]:
            raise TypeError(f"d_model {self.dims[1]} is not a multiple of heads {self.dims[2]}")

    @property
    def dims(self):
        preset = TRANSFORMER_SIZES[self.size]
        return tuple(
            v if v is not None else p for v, p in zip((self.layers, self.d_model, self.heads, self.d_ff), preset)
        )

    _probe_shape = (8,)

    def weights(self, input_shape, num_classes):
        layers, d, _, f = self.dims
        out = [Weight("embedding", (num_classes, d), "embedding")]
        for layer in range(layers):
            name = f"layer{layer}"
            out += _norm_weights(f"{name}/ln_attention", d)
            for part in ("query", "key", "value", "output"):
                out += _dense_weights(f"{name}/{part}", d, d)
            out += (
                _norm_weights(f"{name}/ln_ff", d)
                + _dense_weights(f"{name}/ff_in", d, f)
                + _dense_weights(f"{name}/ff_out", f, d)
            )
        return out + _norm_weights("ln_final", d)

    def forward(self, w, x, training):
        import tensorflow as tf

        layers, d, heads, _ = self.dims
        tokens = _token_ids(tf, x)
        batch, length = tokens.shape
        position = np.arange(length)[:, None] / np.power(10000.0, np.arange(0, d, 2)[None, :] / d)
        encoding = np.zeros((length, d))
        encoding[:, 0::2], encoding[:, 1::2] = np.sin(position), np.cos(position)
        h = tf.gather(w["embedding"], tokens) * math.sqrt(d) + tf.constant(encoding, w["embedding"].dtype)
        causal = tf.constant(np.triu(np.full((length, length), -1e9), k=1), h.dtype)
        for layer in range(layers):
            name = f"layer{layer}"
            a = _layer_norm(tf, h, w[f"{name}/ln_attention/gamma"], w[f"{name}/ln_attention/beta"])

            def project(part, a=a, name=name):
                return tf.reshape(
                    a @ w[f"{name}/{part}/kernel"] + w[f"{name}/{part}/bias"], [batch, length, heads, d // heads]
                )

            scores = tf.einsum("bqhd,bkhd->bhqk", project("query"), project("key")) / math.sqrt(d // heads) + causal
            attended = tf.reshape(
                tf.einsum("bhqk,bkhd->bqhd", tf.nn.softmax(scores), project("value")), [batch, length, d]
            )
            h = h + attended @ w[f"{name}/output/kernel"] + w[f"{name}/output/bias"]
            a = _layer_norm(tf, h, w[f"{name}/ln_ff/gamma"], w[f"{name}/ln_ff/beta"])
            h = (
                h
                + tf.nn.relu(a @ w[f"{name}/ff_in/kernel"] + w[f"{name}/ff_in/bias"]) @ w[f"{name}/ff_out/kernel"]
                + w[f"{name}/ff_out/bias"]
            )
        h = _layer_norm(tf, h, w["ln_final/gamma"], w["ln_final/beta"])
        return tf.einsum("bld,vd->blv", h, w["embedding"])

    def flops_per_example(self, input_shape, num_classes) -> int:
        layers, d, _, f = self.dims
        length = input_shape[0]
        per_token = layers * (8 * d * d + 4 * d * f + 4 * length * d) + 2 * d * num_classes
        return int(length * per_token)


@dataclass(frozen=True)
class LstmLm(_PaperModel):
    """LSTM language model: token embedding, stacked LSTM layers, dense read-out over the vocabulary.

    Defaults (2 layers of 1024 units, embedding 512) are recalled, unconfirmed.
    """

    layers: int = 2
    hidden: int = 1024
    embedding: int = 512
    max_trials_per_graph = 1
    _probe_shape = (8,)

    def weights(self, input_shape, num_classes):
        out = [Weight("embedding", (num_classes, self.embedding), "embedding")]
        n_in = self.embedding
        for layer in range(self.layers):
            out += [
                Weight(
                    f"lstm{layer}/kernel",
                    (n_in + self.hidden, 4 * self.hidden),
                    "glorot",
                    fan_in=n_in + self.hidden,
                    fan_out=4 * self.hidden,
                ),
                Weight(f"lstm{layer}/bias", (4 * self.hidden,), "forget_bias"),
            ]
            n_in = self.hidden
        return out + _dense_weights("logits", self.hidden, num_classes)

    def forward(self, w, x, training):
        import tensorflow as tf

        tokens = _token_ids(tf, x)
        batch = tokens.shape[0]
        h = tf.transpose(tf.gather(w["embedding"], tokens), [1, 0, 2])  # time-major for scan
        for layer in range(self.layers):
            kernel, bias = w[f"lstm{layer}/kernel"], w[f"lstm{layer}/bias"]

            def step(state, inputs, kernel=kernel, bias=bias):
                hidden, cell = state
                i, f, g, o = tf.split(tf.concat([inputs, hidden], -1) @ kernel + bias, 4, axis=-1)
                cell = tf.sigmoid(f) * cell + tf.sigmoid(i) * tf.tanh(g)
                return tf.sigmoid(o) * tf.tanh(cell), cell

            zeros = tf.zeros([batch, self.hidden], h.dtype)
            h, _ = tf.scan(step, h, initializer=(zeros, zeros))
        h = tf.transpose(h, [1, 0, 2])
        return h @ w["logits/kernel"] + w["logits/bias"]

    def flops_per_example(self, input_shape, num_classes) -> int:
        n_in, flops = self.embedding, 0
        for _ in range(self.layers):
            flops += 2 * (n_in + self.hidden) * 4 * self.hidden
            n_in = self.hidden
        return int(input_shape[0] * (flops + 2 * self.hidden * num_classes))


# Registered into models.MODELS by name; knobs are the factories' / dataclasses' arguments.
PAPER_MODELS = {
    "fully_connected": fully_connected,
    "simple_cnn": SimpleCnn,
    "resnet_8": resnet_8,
    "resnet_50": resnet_50,
    "vgg_11": Vgg,
    "transformer_lm": TransformerLm,
    "lstm_lm": LstmLm,
}
