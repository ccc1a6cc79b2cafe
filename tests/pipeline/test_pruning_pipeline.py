"""Pruning through Snakemake: a study's trials split over two tune jobs that share the best step,
with the same steps to result, best trials and fits as the same study run without pruning.

float64, so a trial's arithmetic does not depend on its graph's other trials (and the tail graph
never shrinks to one slot, which XLA compiles differently): equal means equal to the bit.
"""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from batch_science.config import Study
from batch_science.tables import STEPS_TO_RESULT_COLUMNS, best_step_file, partial_dir
from conftest import TINY_CONFIG, run_snakemake

pytestmark = pytest.mark.slow

# What counts the trials as they were trained, not the answer: pruned trials stop early.
TRAINED_COUNTS = ["n_infeasible", "n_reached", "n_pruned", "best_val_metric"]


def run_study(workdir: Path, data_dir: str, prune: bool) -> Path:
    study = "pruned" if prune else "full"
    overrides = {
        "study": study,
        "precision": "float64",
        "prune": prune,
        "trials": 6,
        "trials_per_job": 3,  # two tune jobs per study
        "data_dir": data_dir,
        "workloads": {"mnist1d_mlp": {"batch_sizes": [32, 128, 512], "optimizers": ["sgd"]}},
    }
    path = workdir / f"{study}.yaml"
    path.write_text(yaml.safe_dump(overrides))
    run_snakemake(workdir, f"results/{study}/fits.csv", "--cores", "2", "--configfile", str(TINY_CONFIG), str(path))
    return workdir / "results" / study


@pytest.fixture(scope="module")
def runs(tmp_path_factory, prepared_data_dir):
    workdir = tmp_path_factory.mktemp("pruning")
    return run_study(workdir, prepared_data_dir, True), run_study(workdir, prepared_data_dir, False)


def test_steps_to_result_and_best_trials_equal_the_full_runs(runs):
    pruned, full = runs
    steps_pruned, steps_full = pd.read_csv(pruned / "steps_to_result.csv"), pd.read_csv(full / "steps_to_result.csv")
    # config_hash differs by the prune key itself; every other column is the answer or a count.
    answer = [c for c in steps_full.columns if c not in (*TRAINED_COUNTS, "config_hash")]
    assert set(STEPS_TO_RESULT_COLUMNS) - set(TRAINED_COUNTS) <= set(answer)
    pd.testing.assert_frame_equal(steps_pruned[answer], steps_full[answer], check_exact=True)
    assert steps_full["steps_to_result"].notna().all() and (steps_full["n_pruned"] == 0).all()
    assert steps_pruned["n_pruned"].sum() > 0
    trials = pd.read_parquet(pruned / "trials.parquet")
    assert trials["final_step"].sum() < pd.read_parquet(full / "trials.parquet")["final_step"].sum()


def test_fits_equal_the_full_runs(runs):
    """The parametric bootstrap resamples the best trials' fitted curve, so intervals stay exact too."""
    pruned, full = runs
    fits_pruned, fits_full = pd.read_csv(pruned / "fits.csv"), pd.read_csv(full / "fits.csv")
    assert fits_pruned["config_hash"].nunique() == 1 and (fits_pruned["config_hash"] != fits_full["config_hash"]).all()
    columns = [c for c in fits_full.columns if c != "config_hash"]  # the prune key is in the hash
    pd.testing.assert_frame_equal(fits_pruned[columns], fits_full[columns], check_exact=True)


def test_each_tune_job_shared_its_best_step(runs):
    pruned, _ = runs
    folder = Path(partial_dir(str(pruned), Study("mnist1d_mlp", "sgd", 32)))
    files = [best_step_file(folder, shard) for shard in (0, 1)]
    entries = [json.loads(path.read_text()) for path in files if path.exists()]  # a job that met no goal writes none
    steps = pd.read_csv(pruned / "steps_to_result.csv").set_index("batch_size")
    assert min((e["steps_to_result"], e["trial_id"]) for e in entries) == (
        steps.loc[32, "steps_to_result"],
        steps.loc[32, "best_trial"],
    )
