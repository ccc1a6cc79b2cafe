"""Training outcomes: divergence is data, not a crash; same seed, same results; resume loses nothing."""

import math

import pandas as pd
import pytest

from batch_science.config import Study
from batch_science.models.registry import get_model
from batch_science.tables import partial_trial as partial_path
from batch_science.training.engine import Engine
from batch_science.trials import INFEASIBLE, Target
from batch_science.tuning.tune_job import run_tune_job
from conftest import constant_rate_trials

pytestmark = pytest.mark.slow


def make_trials(learning_rates, budget=60, eval_every=20):
    return constant_rate_trials(learning_rates, budget, eval_every, seed=100)


@pytest.fixture(scope="module")
def engine(mnist1d_data_dir):
    from batch_science.data.load import load

    arrays = load({"name": "mnist1d"}, mnist1d_data_dir)
    return Engine(get_model({"name": "mlp", "hidden": [32]}), arrays, "momentum", batch_size=64)


def test_diverging_trial_is_infeasible_and_the_others_train_on(engine):
    outcomes = engine.run(make_trials([1e4, 0.05, 0.02]), Target("error", 0.0), group_size=3)
    assert outcomes[0].status == INFEASIBLE and math.isnan(outcomes[0].steps_to_result)
    assert outcomes[0].final_step < 60
    for outcome in outcomes[1:]:
        assert outcome.status == "not_reached" and outcome.final_step == 60
        losses = [row["val_cross_entropy"] for row in outcome.curve]
        assert losses[-1] < losses[0]  # still learning, untouched by the diverged trial


def test_same_seed_gives_identical_curves(engine):
    first = engine.run(make_trials([0.05, 0.02]), Target("error", 0.5), group_size=2)
    second = engine.run(make_trials([0.05, 0.02]), Target("error", 0.5), group_size=2)
    for a, b in zip(first, second):
        pd.testing.assert_frame_equal(pd.DataFrame(a.curve), pd.DataFrame(b.curve))


def test_reached_trial_stops_at_its_first_evaluation_past_the_target(engine):
    (outcome,) = engine.run(make_trials([0.05], budget=400), Target("error", 0.7), group_size=1)
    assert outcome.status == "reached"
    errors = {row["step"]: row["val_error"] for row in outcome.curve}
    assert outcome.steps_to_result == outcome.final_step == min(s for s, e in errors.items() if e < 0.7)


def test_rerun_trains_only_unfinished_trials(tiny_config, mnist1d_data_dir, tmp_path):
    config = dict(tiny_config, data_dir=mnist1d_data_dir)
    study = Study("mnist1d_mlp", "sgd", 256)
    outputs = dict(
        trials_out=str(tmp_path / "t.parquet"),
        curves_out=str(tmp_path / "c.parquet"),
        partial_dir=str(tmp_path / "partial"),
    )
    run_tune_job(config, study, 0, **outputs)
    first = pd.read_parquet(outputs["trials_out"])
    # Simulate a job killed after its first trial finished: only trial 1 is gone.
    partial_path(outputs["partial_dir"], 1).unlink()
    kept = partial_path(outputs["partial_dir"], 0).stat().st_mtime_ns
    run_tune_job(config, study, 0, **outputs)
    assert partial_path(outputs["partial_dir"], 0).stat().st_mtime_ns == kept
    rerun = pd.read_parquet(outputs["trials_out"])
    # The rerun's graph held only the trial left to train, and its record says so.
    assert list(rerun["trials_per_graph"]) == [first["trials_per_graph"][0], 1]
    pd.testing.assert_frame_equal(rerun.drop(columns="trials_per_graph"), first.drop(columns="trials_per_graph"))
