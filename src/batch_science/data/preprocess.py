"""The paper's datasets through tensorflow-datasets, with their preprocessing.

Images (mnist, fashion_mnist, cifar10, imagenet2012 and any tfds dataset whose input is an
Image feature): pixels scaled to [0, 1] and standardised per channel with the mean and standard
deviation of the training subset (the validation split uses the training statistics).
imagenet2012 images are resized (shorter side to image_size * 8/7, 256 for 224) and centre
cropped to image_size x image_size. Augmentation is applied to training batches on the
device, by `augment_batch` (stateless random ops, so a trial's augmentation depends only on
its seed and step): `flip` (random horizontal flip) or `crop_flip` (zero-pad by image_size/8,
random crop back, random flip), as commonly used for CIFAR-10 and ImageNet.

Text (lm1b and datasets whose supervised keys are (text, text)): tokenised with a subword
vocabulary (tfds's SubwordTextEncoder built on the first `vocab_sentences` training sentences
and cached in data_dir) or bytes, sentences joined with an end-of-sentence token, cut into
windows of sequence_length + 1 tokens; x = window[:-1], y = window[1:] (next-token targets).

Training subsets (dataset-size studies): `train_examples` (a count) or `train_fraction` keep
the first examples of the training split; `classes` keeps the examples of the first classes
(labels below it) in both splits.

Which parts of this the paper used is as PAPER.md states (standardisation, augmentation
where used, tokenisation for LM1B); the exact crop sizes and vocabulary are recalled,
unconfirmed.

Datasets that fit in memory are held as arrays (the engine trains from device-resident arrays).
Larger ones, imagenet2012 at full size, are streamed (data/streamed.py, chosen by
`dataset.streaming` and `dataset.in_memory_limit_gb`): each chunk of training steps reads its
examples from disk and runs the same per-image functions as here (`scaled_image`,
`standardised`), with the per-channel statistics from the same chunked pass over the training
images (`channel_statistics`), so both paths give the same numbers. Streaming covers images and
raw tensors (with `classes` and training subsets); text needs the in-memory path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from batch_science.data.arrays import Arrays, class_positions, train_subset_size
from batch_science.data.tfds_access import dataset_kind, split_examples

# ImageNet resize: shorter side to crop_size / 0.875 before the centre crop (224 -> 256).
CENTRAL_CROP_FRACTION = 0.875
# Variable-size images (ImageNet) are cropped to this size unless dataset.image_size says otherwise.
DEFAULT_IMAGE_SIZE = 224
# Training images per partial sum of the per-channel statistics: the same chunks whether the
# images are in memory or streamed, so both paths standardise with the same numbers to the bit.
STATISTICS_CHUNK = 1024
END_OF_SENTENCE = 0


def applies(spec: dict, builder) -> bool:
    """Preprocessing applies to image and text datasets unless switched off with preprocessing: none."""
    if spec.get("preprocessing", "auto") == "none":
        return False
    kind = dataset_kind(builder)
    return kind.images or kind.text


def keep_classes(xs: list, ys: list, classes: int) -> tuple[list, list]:
    """Examples whose label is below `classes` (the first classes of the label feature)."""
    kept = class_positions([int(y) for y in ys], classes)
    return [xs[i] for i in kept], [ys[i] for i in kept]


# -- images ----------------------------------------------------------------------------------


def scaled_image(image, size: int | None):
    """One uint8 image as float32 in [0, 1], resized and centre-cropped to size x size unless size is None.

    TensorFlow ops only, so the streamed path runs it inside its tf.data pipeline.
    """
    import tensorflow as tf

    image = tf.cast(image, tf.float32) / 255.0
    if not size:
        return image
    # Shorter side to size / 0.875 (Python's round-half-even, as tf.round), then the central crop.
    shape = tf.cast(tf.shape(image)[:2], tf.float64)
    scale = size / CENTRAL_CROP_FRACTION / tf.reduce_min(shape)
    new = tf.maximum(size, tf.cast(tf.round(shape * scale), tf.int32))
    resized = tf.image.resize(image, new, antialias=True)
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    return resized[top : top + size, left : left + size]


def resize_and_centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Shorter side to size / 0.875, then the central size x size crop (uint8 in, float32 [0, 1] out)."""
    return scaled_image(image, size).numpy()


def image_size(spec: dict, feature) -> int | None:
    """The side images are resized and cropped to: dataset.image_size, 224 for variable-size images, else None."""
    return spec.get("image_size") or (DEFAULT_IMAGE_SIZE if None in feature.shape[:2] else None)


def image_arrays(images: list[np.ndarray], size: int | None) -> np.ndarray:
    """Stack images as float32 in [0, 1] (`scaled_image` of each)."""
    if size or len({img.shape for img in images}) > 1:
        return np.stack([resize_and_centre_crop(img, size or DEFAULT_IMAGE_SIZE) for img in images]).astype(np.float32)
    return scaled_image(np.stack(images), None).numpy()


def channel_statistics(chunks) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (float64) of training images given in chunks of STATISTICS_CHUNK."""
    total = squares = 0.0
    count = 0
    for chunk in chunks:
        values = np.asarray(chunk, np.float64).reshape(-1, chunk.shape[-1])
        total, squares, count = total + values.sum(axis=0), squares + np.square(values).sum(axis=0), count + len(values)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
    return mean, np.where(std > 0, std, 1.0)


def standardised(images, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(images - mean) / std per channel, in float64, rounded to float32."""
    return ((np.asarray(images, np.float64) - mean) / std).astype(np.float32)


def standardise(train: np.ndarray, *others: np.ndarray):
    """Per-channel standardisation with the training set's mean and standard deviation."""
    mean, std = channel_statistics(
        train[start : start + STATISTICS_CHUNK] for start in range(0, len(train), STATISTICS_CHUNK)
    )
    return tuple(standardised(a, mean, std) for a in (train, *others))


def augment_batch(x, seeds, step, augmentation: str):
    """Augment a training batch on the device: x [trials, batch, H, W, C], seeds [trials] int64,
    step a number or each trial's step [trials] (the engine's slots need not be in step).

    Stateless: the same (trial seed, step) always gives the same crops and flips.
    """
    import tensorflow as tf

    if augmentation in (None, "none"):
        return x
    trials, batch, height, width, channels = x.shape
    steps = tf.broadcast_to(tf.cast(step, tf.int64), tf.shape(seeds))
    seed_pairs = tf.stack([tf.cast(seeds, tf.int64), steps], axis=1)  # [trials, 2]

    def one_trial(args):
        images, seed = args
        flip = tf.random.stateless_uniform([batch, 1, 1, 1], seed=seed) < 0.5
        images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        if augmentation == "crop_flip":
            pad = max(1, height // 8)
            padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
            offsets = tf.random.stateless_uniform([batch, 2], seed=seed + 1, maxval=2 * pad + 1, dtype=tf.int32)
            rows = offsets[:, :1] + tf.range(height)[None, :]
            cols = offsets[:, 1:] + tf.range(width)[None, :]
            images = tf.gather(padded, rows, axis=1, batch_dims=1)
            images = tf.gather(images, cols, axis=2, batch_dims=1)
        return images

    return tf.map_fn(one_trial, (x, seed_pairs), fn_output_signature=x.dtype)


# -- text ------------------------------------------------------------------------------------


class ByteTokenizer:
    """Bytes 1..256 (0 is the end-of-sentence token)."""

    vocab_size = 257

    def encode(self, text: str) -> list[int]:
        return [b + 1 for b in text.encode("utf-8")]

    def decode(self, ids) -> str:
        return bytes(i - 1 for i in ids if i > 0).decode("utf-8", errors="replace")


class SubwordTokenizer:
    """tfds's SubwordTextEncoder; ids shifted by one so 0 stays the end-of-sentence token."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.vocab_size = encoder.vocab_size + 1

    def encode(self, text: str) -> list[int]:
        return [i + 1 for i in self.encoder.encode(text)]

    def decode(self, ids) -> str:
        return self.encoder.decode([i - 1 for i in ids if i > 0])


def build_tokenizer(spec: dict, sentences: list[str], data_dir: str):
    if spec.get("tokenizer", "subwords") == "bytes":
        return ByteTokenizer()
    import tensorflow_datasets as tfds

    vocab_size = int(spec.get("vocab_size", 32768))
    cache = Path(data_dir) / f"{spec['name']}_subwords{vocab_size}"
    encoder_class = tfds.deprecated.text.SubwordTextEncoder
    if Path(f"{cache}.subwords").exists():
        return SubwordTokenizer(encoder_class.load_from_file(str(cache)))
    corpus = sentences[: int(spec.get("vocab_sentences", 100_000))]
    encoder = encoder_class.build_from_corpus(iter(corpus), target_vocab_size=vocab_size)
    # Tune jobs may build it at once: each writes its own file and renames it into place (same corpus, same vocabulary).
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(f".{cache.name}.{os.getpid()}")
    encoder.save_to_file(str(partial))
    os.replace(f"{partial}.subwords", f"{cache}.subwords")
    return SubwordTokenizer(encoder)


def token_windows(sentences: list[str], tokenizer, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Sentences joined by end-of-sentence tokens, cut into (input, next-token target) windows."""
    stream: list[int] = []
    for sentence in sentences:
        stream += tokenizer.encode(sentence) + [END_OF_SENTENCE]
    n = (len(stream) - 1) // length
    if n < 1:
        raise ValueError(f"only {len(stream)} tokens, fewer than one window of sequence_length {length} + 1")
    tokens = np.asarray(stream[: n * length + 1], dtype=np.int32)
    x = np.stack([tokens[i * length : (i + 1) * length] for i in range(n)])
    y = np.stack([tokens[i * length + 1 : (i + 1) * length + 1] for i in range(n)])
    return x, y


def _text(value) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


# -- loading ---------------------------------------------------------------------------------


def load_arrays(builder, spec: dict, data_dir: str):
    """Arrays of a workload's dataset block with the paper's preprocessing (see the module docstring)."""
    kind = dataset_kind(builder)
    train_split, validation_split = spec.get("train_split", "train"), spec.get("validation_split", "validation")
    x_train, y_train = split_examples(builder, train_split)
    x_validation, y_validation = split_examples(builder, validation_split)
    if spec.get("classes") and not kind.text:
        (x_train, y_train), (x_validation, y_validation) = (
            keep_classes(x, y, spec["classes"]) for x, y in ((x_train, y_train), (x_validation, y_validation))
        )
    n = train_subset_size(spec, len(x_train))
    x_train, y_train = x_train[:n], y_train[:n]

    if kind.text:
        sentences = [_text(s) for s in x_train]
        tokenizer = build_tokenizer(spec, sentences, data_dir)
        length = int(spec.get("sequence_length", 256))
        xt, yt = token_windows(sentences, tokenizer, length)
        xv, yv = token_windows([_text(s) for s in x_validation], tokenizer, length)
        return Arrays(xt, yt, xv, yv, tokenizer.vocab_size)

    size = image_size(spec, builder.info.features[builder.info.supervised_keys[0]])
    train, validation = image_arrays(x_train, size), image_arrays(x_validation, size)
    train, validation = standardise(train, validation)
    label = builder.info.features[builder.info.supervised_keys[1]]
    num_classes = min(spec["classes"], label.num_classes) if spec.get("classes") else label.num_classes
    return Arrays(
        train,
        np.asarray(y_train, np.int32),
        validation,
        np.asarray(y_validation, np.int32),
        num_classes,
        augmenter(spec),
    )


def augmenter(spec: dict):
    """The dataset's device-side augmentation as augment(x, seeds, step), or None."""
    augmentation = spec.get("augmentation", "none")
    if augmentation == "none":
        return None
    return lambda x, seeds, step: augment_batch(x, seeds, step, augmentation)
