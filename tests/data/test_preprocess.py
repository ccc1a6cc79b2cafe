"""The paper's datasets through tensorflow-datasets, preprocessed, on tfds.testing.mock_data (no download)."""

import numpy as np
import pytest

from batch_science.data import preprocess, tfds_access

tfds = pytest.importorskip("tensorflow_datasets")


def mock_arrays(spec, tmp_path, num_examples=24):
    with tfds.testing.mock_data(num_examples=num_examples):
        builder = tfds.builder(spec["name"], data_dir=str(tmp_path))
        return preprocess.load_arrays(builder, spec, str(tmp_path))


@pytest.mark.parametrize(
    "name, shape, classes",
    [("mnist", (28, 28, 1), 10), ("fashion_mnist", (28, 28, 1), 10), ("cifar10", (32, 32, 3), 10)],
)
def test_small_image_datasets_are_standardised_per_channel_with_training_statistics(name, shape, classes, tmp_path):
    spec = {"name": name, "train_split": "train[:55000]", "validation_split": "train[55000:]", "train_examples": 20}
    arrays = mock_arrays(spec, tmp_path)
    assert arrays.x_train.shape == (20, *shape) and arrays.x_train.dtype == np.float32
    assert arrays.num_classes == classes and arrays.y_train.dtype == np.int32
    channel_axes = tuple(range(3))
    np.testing.assert_allclose(arrays.x_train.mean(axis=channel_axes), 0, atol=1e-4)
    np.testing.assert_allclose(arrays.x_train.std(axis=channel_axes), 1, atol=1e-3)
    assert arrays.augment is None


def test_training_fraction_keeps_the_leading_examples(tmp_path):
    whole = mock_arrays({"name": "mnist", "validation_split": "test", "preprocessing": "auto"}, tmp_path)
    half = mock_arrays({"name": "mnist", "validation_split": "test", "train_fraction": 0.5}, tmp_path)
    assert len(half.y_train) == len(whole.y_train) // 2
    np.testing.assert_array_equal(half.y_train, whole.y_train[: len(half.y_train)])
    with pytest.raises(ValueError, match="train_examples 1000 exceeds"):
        mock_arrays({"name": "mnist", "validation_split": "test", "train_examples": 1000}, tmp_path)


def test_imagenet_images_of_any_size_are_resized_and_centre_cropped(tmp_path):
    arrays = mock_arrays(
        {"name": "imagenet2012", "validation_split": "validation", "image_size": 32}, tmp_path, num_examples=6
    )
    assert arrays.x_train.shape == (6, 32, 32, 3) and arrays.num_classes == 1000
    # A 50x100 horizontal gradient: shorter side 50 -> 20 / 0.875 = 23, width -> 46; the centre crop
    # starts at resized column (46 - 20) // 2 = 13, i.e. original column (13 + 0.5) * 100 / 46 - 0.5.
    image = np.tile(np.arange(100, dtype=np.uint8)[None, :, None], (50, 1, 3))
    crop = preprocess.resize_and_centre_crop(image, 20)
    assert crop.shape == (20, 20, 3)
    assert crop[0, 0, 0] * 255 == pytest.approx((13 + 0.5) * 100 / 46 - 0.5, abs=0.5)
    assert crop[0, -1, 0] > crop[0, 0, 0]


def test_lm1b_is_tokenised_into_next_token_windows(tmp_path):
    spec = {
        "name": "lm1b",
        "validation_split": "test",
        "tokenizer": "subwords",
        "vocab_size": 300,
        "sequence_length": 16,
    }
    arrays = mock_arrays(spec, tmp_path, num_examples=40)
    assert arrays.x_train.shape[1] == 16 and arrays.y_train.shape == arrays.x_train.shape
    np.testing.assert_array_equal(
        arrays.x_train[:, 1:], arrays.y_train[:, :-1]
    )  # targets are the inputs shifted by one
    assert arrays.x_train.max() < arrays.num_classes
    assert (tmp_path / "lm1b_subwords300.subwords").exists()  # the vocabulary is built once and cached


def test_tokenisers_invert_and_mark_sentence_ends():
    tokenizer = preprocess.ByteTokenizer()
    x, y = preprocess.token_windows(["ab", "cde"], tokenizer, 3)
    assert x.tolist() == [[98, 99, 0], [100, 101, 102]] and y.tolist() == [[99, 0, 100], [101, 102, 0]]
    assert tokenizer.decode(tokenizer.encode("héllo")) == "héllo"
    with pytest.raises(ValueError, match="fewer than one window"):
        preprocess.token_windows(["a"], tokenizer, 8)


def test_crop_flip_augmentation_is_stateless_and_keeps_pixels():
    import tensorflow as tf

    x = tf.constant(np.arange(2 * 3 * 8 * 8 * 1, dtype=np.float32).reshape(2, 3, 8, 8, 1))
    seeds = tf.constant([5, 6], tf.int64)
    first = preprocess.augment_batch(x, seeds, 7, "crop_flip").numpy()
    again = preprocess.augment_batch(x, seeds, 7, "crop_flip").numpy()
    other_step = preprocess.augment_batch(x, seeds, 8, "crop_flip").numpy()
    np.testing.assert_array_equal(first, again)
    assert first.shape == x.shape and not np.array_equal(first, other_step)
    # Every output pixel is an input pixel of the same image or zero padding.
    for t in range(2):
        for b in range(3):
            assert set(first[t, b].ravel()) <= set(x.numpy()[t, b].ravel()) | {0.0}
    flipped = preprocess.augment_batch(x, seeds, 7, "flip").numpy()
    for t in range(2):
        for b in range(3):
            assert np.array_equal(flipped[t, b], x.numpy()[t, b]) or np.array_equal(
                flipped[t, b], x.numpy()[t, b, :, ::-1]
            )


def test_a_dataset_without_supervised_keys_is_one_line_error():
    class Info:
        supervised_keys = None

    class Builder:
        name = "unsupervised"
        info = Info()

    with pytest.raises(ValueError, match="dataset 'unsupervised': has no supervised keys"):
        tfds_access.dataset_kind(Builder())


def test_class_subset_keeps_the_first_classes_in_both_splits(tmp_path):
    whole = mock_arrays(
        {"name": "cifar10", "train_split": "train", "validation_split": "test"}, tmp_path, num_examples=60
    )
    half = mock_arrays(
        {"name": "cifar10", "train_split": "train", "validation_split": "test", "classes": 5}, tmp_path, num_examples=60
    )
    assert half.num_classes == 5 and half.y_train.max() < 5 and half.y_validation.max() < 5
    assert len(half.y_train) == int((whole.y_train < 5).sum()) > 0
