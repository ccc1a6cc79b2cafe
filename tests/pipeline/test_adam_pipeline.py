"""Adam end to end through Snakemake: a tiny study with Nesterov momentum and Adam (tests/configs/tiny_adam.yaml),
from tune jobs and the noise-scale run trained with Adam to the figures and the summary."""

import pandas as pd
import pytest

from conftest import REPO, run_snakemake

pytestmark = pytest.mark.slow

CONFIG = REPO / "tests" / "configs" / "tiny_adam.yaml"


@pytest.fixture(scope="module")
def adam_results(tmp_path_factory, prepared_data_dir):
    workdir = tmp_path_factory.mktemp("tiny_adam")
    (workdir / "data").mkdir()
    (workdir / "data" / "tfds").symlink_to(prepared_data_dir)
    run_snakemake(workdir, "--cores", "2", "--configfile", str(CONFIG))
    return workdir / "results" / "tiny_adam"


def test_adam_trials_carry_their_metaparameters_and_reach_the_goal(adam_results):
    trials = pd.read_parquet(adam_results / "trials.parquet")
    adam = trials[trials["optimizer"] == "adam"]
    assert len(adam) == 8 and (adam["momentum"] == 0).all()
    assert adam["beta1"].between(0.5, 0.95).all() and (adam["beta2"] == 0.999).all()
    assert adam["epsilon"].between(1e-8, 1e-6).all()
    assert (adam["effective_learning_rate"] == adam["learning_rate"]).all()
    assert trials.loc[trials["optimizer"] == "nesterov", "beta1"].isna().all()
    steps = pd.read_csv(adam_results / "steps_to_result.csv")
    best = steps[steps["optimizer"] == "adam"]
    assert len(best) == 2 and best["steps_to_result"].notna().any()
    assert best.dropna(subset=["steps_to_result"])["beta1"].between(0.5, 0.95).all()


def test_figures_and_summary_show_both_optimizers(adam_results):
    figures = adam_results / "figures"
    for name in ["steps_to_result", "learning_rate", "metaparameters/mnist1d_mlp_adam"]:
        assert (figures / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    summary = (adam_results / "summary.md").read_text()
    assert "**mnist1d_mlp, Adam**" in summary and "**mnist1d_mlp, Nesterov momentum**" in summary
    assert "best 1 - beta1" in summary
    noise = pd.read_csv(adam_results / "noise_scale" / "mnist1d_mlp.csv")  # trained with Adam
    assert noise["b_simple"].notna().any()
