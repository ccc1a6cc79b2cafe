"""Results follow the files a config names by path: a user's Keras model module, tfds builder
module or npz file is part of every trial's fingerprint, so an edit to it reruns its trials."""

import json

from batch_science.config import Study
from batch_science.imports import source_digest
from batch_science.tuning.search import trial_fingerprint

ENGINE = {"precision": "float32", "divergence_factor": 100, "stop_at_target": True, "data_dir": "data"}
TRIAL = {"trial_id": 0, "learning_rate": 0.1, "seed": 1}


def fingerprint(config_dir, model, dataset):
    config = {**ENGINE, "config_dir": str(config_dir), "workloads": {"w": {"model": model, "dataset": dataset}}}
    source_digest.cache_clear()  # one process sees one version of a file; this test edits them
    return json.loads(trial_fingerprint(config, Study("w", "sgd", 8), TRIAL))


def test_an_edit_to_the_model_module_or_npz_file_changes_the_fingerprint(tmp_path):
    (tmp_path / "my_model.py").write_text("def build():\n    return None\n")
    (tmp_path / "data.npz").write_bytes(b"first")
    model, dataset = {"keras": "my_model:build"}, {"npz": "data.npz"}
    before = fingerprint(tmp_path, model, dataset)
    assert set(before["sources"]) == {"model", "npz"} and "missing" not in before["sources"].values()
    (tmp_path / "my_model.py").write_text("def build():\n    return 1\n")
    after_model = fingerprint(tmp_path, model, dataset)
    assert after_model["sources"]["model"] != before["sources"]["model"]
    assert after_model["sources"]["npz"] == before["sources"]["npz"]
    (tmp_path / "data.npz").write_bytes(b"second")
    assert fingerprint(tmp_path, model, dataset)["sources"]["npz"] != before["sources"]["npz"]


def test_built_in_models_and_datasets_keep_their_fingerprint(tmp_path):
    """No `sources` key: fingerprints (and partial results) of existing studies stay valid."""
    assert "sources" not in fingerprint(tmp_path, {"name": "mlp"}, {"name": "mnist1d"})
