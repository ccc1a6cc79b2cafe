"""End to end: the tiny study through Snakemake, checking what the outputs say."""

import platform

import numpy as np
import pandas as pd
import pytest

from batch_science.analysis.steps import trial_steps_to_result
from batch_science.io import read_parquet_metadata
from conftest import TINY_CONFIG, run_snakemake

pytestmark = pytest.mark.slow


def test_steps_to_result_follow_from_the_curves(tiny_results, tiny_config):
    results = tiny_results / "results" / "tiny"
    steps = pd.read_csv(results / "steps_to_result.csv")
    curves = pd.read_parquet(results / "curves.parquet")
    trials = pd.read_parquet(results / "trials.parquet")
    workload = tiny_config["workloads"]["mnist1d_mlp"]
    assert len(steps) == len(workload["optimizers"]) * len(workload["batch_sizes"])
    assert len(trials) == len(steps) * tiny_config["trials"]
    assert set(trials["status"]) <= {"reached", "not_reached", "infeasible"}
    for _, row in steps.iterrows():
        study = (curves["optimizer"] == row["optimizer"]) & (curves["batch_size"] == row["batch_size"])
        infeasible = set(
            trials[
                (trials["optimizer"] == row["optimizer"])
                & (trials["batch_size"] == row["batch_size"])
                & (trials["status"] == "infeasible")
            ]["trial_id"]
        )
        per_trial = {
            trial_id: trial_steps_to_result(curve, "error", workload["target"]["value"])
            for trial_id, curve in curves[study].groupby("trial_id")
            if trial_id not in infeasible
        }
        reached = {t: s for t, s in per_trial.items() if np.isfinite(s)}
        if reached:
            best = min(reached.items(), key=lambda item: (item[1], item[0]))
            assert (row["steps_to_result"], row["best_trial"]) == (best[1], best[0])
        else:
            assert np.isnan(row["steps_to_result"])
    # The target is reachable at every batch size of the tiny study.
    assert steps["steps_to_result"].notna().all()


def test_tables_carry_provenance(tiny_results, tiny_config):
    from batch_science.config import config_hash

    meta = read_parquet_metadata(tiny_results / "results" / "tiny" / "trials.parquet")
    assert meta["config_hash"] == config_hash(tiny_config)
    assert "tensorflow" in meta["package_versions"] and meta["seed"] == "0"
    trials = pd.read_parquet(tiny_results / "results" / "tiny" / "trials.parquet")
    assert set(trials["training_host"]) == {platform.node()}
    assert set(trials["training_device"]) == {"CPU: " + (platform.processor() or platform.machine())}
    # Each job's graph held at most its trials (the tiny study: 4 per job).
    assert trials["trials_per_graph"].between(1, 4).all()


def test_tables_carry_provenance_as_dataframe_attrs_and_config_hash_columns(tiny_results, tiny_config):
    from batch_science.config import config_hash

    results = tiny_results / "results" / "tiny"
    for table in ["trials.parquet", "curves.parquet", "fit_bootstrap.parquet"]:
        attrs = pd.read_parquet(results / table).attrs
        assert attrs["config_hash"] == config_hash(tiny_config), table
        assert attrs["config"]["study"] == "tiny" and attrs["seed"] == 0, table
        assert "tensorflow" in attrs["package_versions"], table
    for table in ["steps_to_result.csv", "fits.csv"]:
        assert set(pd.read_csv(results / table)["config_hash"]) == {config_hash(tiny_config)}, table


def test_fits_and_figures(tiny_results):
    results = tiny_results / "results" / "tiny"
    fits = pd.read_csv(results / "fits.csv")
    assert {
        "s_min",
        "s_min_lo",
        "s_min_hi",
        "b_crit",
        "b_crit_lo",
        "b_crit_hi",
        "b_perfect_end",
        "b_max_useful",
    } <= set(fits.columns)
    assert len(fits) == 2 and (fits["s_min"] > 0).all()
    for name in [
        "steps_to_result",
        "learning_rate",
        "metaparameters/mnist1d_mlp_sgd",
        "metaparameters/mnist1d_mlp_nesterov",
    ]:
        assert (results / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (results / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"


def test_job_logs_report_progress(tiny_results):
    logs = list((tiny_results / "logs" / "tune").rglob("*.log"))
    assert logs and all("done in" in log.read_text() for log in logs)


def test_nothing_left_to_do_after_a_run(tiny_results):
    result = run_snakemake(tiny_results, "-n", "--configfile", str(TINY_CONFIG))
    assert "Nothing to be done" in result.stdout + result.stderr
