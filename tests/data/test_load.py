"""Loading a prepared dataset into memory: the decoded arrays are kept beside it for later jobs."""

import shutil

import numpy as np
import pytest

from batch_science.data.load import load


def _load(data_dir):
    return load({"name": "mnist1d"}, str(data_dir))


def test_arrays_are_decoded_once_then_loaded_from_the_cache(mnist1d_data_dir, tmp_path):
    data_dir = tmp_path / "tfds"
    shutil.copytree(mnist1d_data_dir, data_dir, ignore=shutil.ignore_patterns("*.arrays.npz"))
    first = _load(data_dir)
    caches = sorted(p.name for p in data_dir.rglob("*.arrays.npz"))
    assert caches == ["train.arrays.npz", "validation.arrays.npz"]
    assert not list(data_dir.rglob("*.partial"))

    # The cache, not tf.data, answers now: a marked cache file shows through.
    train_cache = next(data_dir.rglob("train.arrays.npz"))
    marked = first.x_train.copy()
    marked[0, 0] = 12345.0
    np.savez(train_cache, inputs=marked, labels=first.y_train)
    assert _load(data_dir).x_train[0, 0] == 12345.0

    # A damaged cache is decoded again and rewritten.
    train_cache.write_bytes(b"not an npz file")
    again = _load(data_dir)
    for name in ("x_train", "y_train", "x_validation", "y_validation"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert np.load(train_cache)["inputs"].shape == first.x_train.shape


def test_a_cache_that_cannot_be_written_only_costs_decoding(mnist1d_data_dir, tmp_path):
    data_dir = tmp_path / "tfds"
    shutil.copytree(mnist1d_data_dir, data_dir, ignore=shutil.ignore_patterns("*.arrays.npz"))
    # A folder where the cache file would go: neither readable as .npz nor replaceable by a rename.
    # (Permissions would not do: the tests may run as root.)
    blocker = next(data_dir.rglob("dataset_info.json")).parent / "train.arrays.npz"
    (blocker / "occupied").mkdir(parents=True)
    arrays = _load(data_dir)
    assert len(arrays.x_train) > 0 and blocker.is_dir()
    assert not list(data_dir.rglob("*.partial"))


@pytest.mark.slow
def test_raw_tensors_keep_the_same_examples_in_memory_and_streamed(mnist1d_data_dir):
    """A class subset and a training subset together: the first 500 training examples of the
    first 3 classes, whether the dataset is held in memory or streamed from disk."""
    spec = {"name": "mnist1d", "classes": 3, "train_examples": 500}
    in_memory = load({**spec, "streaming": False}, mnist1d_data_dir)
    streamed = load({**spec, "streaming": True}, mnist1d_data_dir)
    x, y = streamed.read(streamed.train_records, np.arange(streamed.n_train))
    assert len(in_memory.y_train) == streamed.n_train == 500 and (y < 3).all()
    np.testing.assert_array_equal(in_memory.y_train, y)
    np.testing.assert_array_equal(in_memory.x_train, x)
