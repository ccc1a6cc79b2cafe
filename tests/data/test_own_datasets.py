"""Own datasets: a tfds builder module (`dataset: {builder}`) and .npz arrays (`dataset: {npz}`),
through the same prepare and load path as built-in data, with the same errors."""

from pathlib import Path

import numpy as np
import pytest
from own_builder import points

from batch_science.config import ConfigError, config_hash, dataset_name
from batch_science.data.load import load, prepare

HERE = str(Path(__file__).parent)  # own_builder.py, found as a config's folder would be


def npz_file(folder: Path, **changes) -> Path:
    rng = np.random.default_rng(2)
    arrays = {
        "x_train": rng.normal(size=(50, 3, 2)).astype(np.float32),
        "y_train": rng.integers(0, 4, size=50),
        "x_validation": rng.normal(size=(20, 3, 2)).astype(np.float32),
        "y_validation": rng.integers(0, 4, size=20),
        **changes,
    }
    path = folder / "arrays.npz"
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


def test_a_builder_module_is_prepared_and_loaded_as_a_tfds_dataset(tmp_path):
    spec = {"builder": "own_builder:Points"}
    prepare(spec, str(tmp_path), config_dir=HERE)
    arrays = load(spec, str(tmp_path), HERE)
    x, y = points(64, 0)
    order = np.lexsort(arrays.x_train.T)  # tfds stores examples in its own order
    np.testing.assert_array_equal(arrays.x_train[order], x[np.lexsort(x.T)])
    assert sorted(arrays.y_train) == sorted(y) and arrays.num_classes == 3 and len(arrays.x_validation) == 32
    assert dataset_name(spec) == "own_builder.Points"
    subset = load({**spec, "train_examples": 10, "classes": 2}, str(tmp_path), HERE)
    assert len(subset.x_train) == 10 and subset.num_classes == 2 and set(subset.y_validation) <= {0, 1}
    with pytest.raises(ValueError, match="dataset 'own_builder.Points': train_examples 100 exceeds the 64"):
        load({**spec, "train_examples": 100}, str(tmp_path), HERE)


def test_npz_arrays_are_prepared_and_loaded_as_stored(tmp_path):
    path = npz_file(tmp_path)
    spec = {"npz": "arrays.npz"}  # relative to the config's folder
    data_dir = str(tmp_path / "tfds")
    prepare(spec, data_dir, config_dir=str(tmp_path))
    arrays = load(spec, data_dir, str(tmp_path))
    with np.load(path) as stored:
        order = np.lexsort(arrays.x_train.reshape(50, -1).T)
        expected = np.lexsort(stored["x_train"].reshape(50, -1).T)
        np.testing.assert_array_equal(arrays.x_train[order], stored["x_train"][expected])
        np.testing.assert_array_equal(arrays.y_train[order], stored["y_train"][expected])
    assert arrays.num_classes == 4 and arrays.x_validation.shape == (20, 3, 2)
    with pytest.raises(FileNotFoundError, match="dataset 'npz.arrays.npz' is not prepared"):
        npz_file(tmp_path, y_train=np.zeros(50, int))  # an edited file is another dataset: prepare it again
        load(spec, data_dir, str(tmp_path))


@pytest.mark.parametrize(
    "dataset, message",
    [
        ({"builder": "no_such_module:Points"}, "dataset.builder: 'no_such_module:Points': module 'no_such_module' not"),
        ({"builder": "own_builder:Missing"}, "dataset.builder: 'own_builder:Missing': module 'own_builder' ("),
        (
            {"builder": "own_builder:NOT_A_BUILDER"},
            "dataset.builder: 'own_builder:NOT_A_BUILDER': not a tensorflow-datasets",
        ),
        ({"npz": "missing.npz"}, "dataset.npz: 'missing.npz': no such file"),
        ({"npz": "arrays.npz", "name": "mnist1d"}, "dataset: give one of name, builder, npz (got name, npz)"),
        ({"npz": "no_labels.npz"}, "dataset.npz: "),
    ],
)
def test_a_bad_own_dataset_is_one_line_naming_the_key(tiny_config, tmp_path, dataset, message):
    from batch_science.tuning.study_config import check_study

    npz_file(tmp_path)
    np.savez(tmp_path / "no_labels.npz", x_train=np.zeros((2, 2)))
    config = {**tiny_config, "config_dir": HERE if "builder" in dataset else str(tmp_path), "data_dir": str(tmp_path)}
    config["workloads"] = {"w": {**tiny_config["workloads"]["mnist1d_mlp"], "dataset": dataset}}
    with pytest.raises(ConfigError) as error:
        check_study(config)
    assert str(error.value).startswith("config key workloads.w.dataset") and "\n" not in str(error.value)
    assert message in str(error.value)
    if "no_labels" in str(dataset):
        assert "no array y_train, x_validation, y_validation" in str(error.value)


def test_the_config_folder_is_not_part_of_the_config_hash(tiny_config):
    assert config_hash({**tiny_config, "config_dir": "/elsewhere"}) == config_hash(tiny_config)
