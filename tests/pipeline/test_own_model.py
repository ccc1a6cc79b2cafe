"""The example a user copies (examples/own_model/): a Keras model by import path, found in the config
file's folder, run end to end through Snakemake on a tiny budget."""

import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "own_model" / "config.yaml"
# The example's study cut to seconds: a second config file, merged over the example's nested blocks
# (Keras modules are looked up beside the first one, the example's).
TINY = {
    "trials": 2,
    "trials_per_job": 2,
    "bootstrap": 10,
    "noise_scale": {"steps": 40, "eval_every": 20, "big_batch": 128},
    "workloads": {"mnist1d_small_cnn": {"batch_sizes": [16, 256], "step_budget": 60, "eval_every": 20}},
}


def test_the_own_model_example_runs_end_to_end(tmp_path, prepared_data_dir):
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump({**TINY, "data_dir": prepared_data_dir}))
    run_snakemake(tmp_path, "--cores", "2", "--configfile", str(EXAMPLE), str(tiny))
    results = tmp_path / "results" / "own_model"
    trials = pd.read_parquet(results / "trials.parquet")
    assert set(trials["model"]) == {"model:small_cnn"}
    assert set(trials["batch_size"]) == {16, 256} and set(trials["optimizer"]) == {"nesterov", "adam"}
    assert trials.loc[trials["optimizer"] == "adam", ["beta1", "beta2", "epsilon"]].notna().all().all()
    assert len(trials) == 8 and trials["status"].isin(["reached", "not_reached", "infeasible"]).all()
    curves = pd.read_parquet(results / "curves.parquet")
    # Each trial starts from its own seed's weights: the step-0 losses of a study's trials differ.
    start = curves[curves["step"] == 0].groupby(["optimizer", "batch_size"])["val_cross_entropy"].nunique()
    assert (start == 2).all()
    assert (results / "figures" / "steps_to_result.png").exists()
    steps = pd.read_csv(results / "steps_to_result.csv")
    assert set(steps["optimizer"]) == {"nesterov", "adam"}  # both in the tables the figures draw
    for optimizer in ("nesterov", "adam"):
        assert (results / "figures" / "metaparameters" / f"mnist1d_small_cnn_{optimizer}.png").exists()
    assert (results / "noise_scale" / "mnist1d_small_cnn.csv").exists()
