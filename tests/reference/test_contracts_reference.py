"""What a trial's record says, against definitions written out here: the NQM's expected loss under
the schedule and each optimizer (the reference's update rules on the coefficients of a linear
system), search points however trials are split into jobs, the recorded effective learning rate,
and the best metric and its step against the curve."""

import numpy as np
import pandas as pd
import pytest

from batch_science.config import Study, shard_count, shard_trials, studies
from batch_science.training.nqm import run_trials
from batch_science.trials import OPTIMIZERS, Target
from batch_science.tuning.search import study_trials
from reference import numpy_reference as ref


def nqm_expected_losses(curvature, optimizer, batch_size, trial, steps):
    """1/2 sum_i h_i E theta_i^2 at steps 0..steps, theta_0 ~ N(0, I), g = h theta + xi, Var xi_i = h_i / B.

    theta and v are linear in (theta_0, xi_0, ..., xi_{steps-1}): their coefficients are stepped with
    the reference's update rules and schedule, and E theta^2 is the sum of squared coefficients
    weighted by each source's variance.
    """
    k = len(curvature)
    theta = np.zeros((k, 1 + steps))
    theta[:, 0] = 1.0
    state = ref.initial_state(optimizer, [theta])
    losses = []
    for step in range(steps + 1):
        source_variance = np.where(np.arange(1 + steps) == 0, 1.0, curvature[:, None] / batch_size)
        source_variance[:, 1 + step :] = 0.0  # noise not drawn yet
        losses.append(0.5 * float((curvature * (theta**2 * source_variance).sum(1)).sum()))
        if step == steps:
            break
        gradient = curvature[:, None] * theta
        gradient[:, 1 + step] += 1.0  # this step's noise xi_step
        rate = ref.learning_rate(step, trial["learning_rate"], trial["decay_steps"], trial["end_factor"])
        (theta,), state = ref.OPTIMIZERS[optimizer]([theta], state, [gradient], rate, trial, step)
    return np.array(losses)


# The NQM's adam is its own analytic model (preconditioned momentum, tests/training/test_nqm.py), not Adam's update.
@pytest.mark.parametrize("optimizer", [name for name in OPTIMIZERS if name != "adam"])
def test_nqm_follows_the_schedule_and_the_update_rules(optimizer):
    spec = {"dimension": 6, "spectrum_exponent": 1.0}
    curvature = np.arange(1, 7, dtype=float) ** -1.0
    trial = dict(trial_id=0, learning_rate=0.9, momentum=0.0 if optimizer == "sgd" else 0.6, decay_steps=5,
                 end_factor=0.1, label_smoothing=0.0, seed=0, step_budget=9, eval_every=1)  # fmt: skip
    want = nqm_expected_losses(curvature, optimizer, 4, trial, 9)
    (outcome,) = run_trials(spec, optimizer, 4, [trial], Target("cross_entropy", 0.0))
    got = np.array([row["val_cross_entropy"] for row in outcome.curve])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert (np.diff(got) < 0).all()  # the loss falls step after step
    # A goal met exactly at step 6 (the NQM's own value there) must not count until step 7.
    (outcome,) = run_trials(spec, optimizer, 4, [trial], Target("cross_entropy", float(got[6])))
    assert (outcome.status, outcome.steps_to_result, outcome.final_step) == ("reached", 7, 7)
    assert (outcome.best_metric, outcome.best_step) == (got[7], 7)


def test_search_points_do_not_depend_on_trials_per_job(tiny_config):
    """The trials of every study, gathered over its tune jobs, are the same for 1, 3 or 8 trials per job."""
    gathered = []
    for per_job in (1, 3, 8):
        config = dict(tiny_config, trials=8, trials_per_job=per_job)
        gathered.append(
            {
                study: [t for shard in range(shard_count(config, study.workload))
                        for t in study_trials(config, study, shard_trials(config, shard, study.workload))]
                for study in studies(config)
            }
        )  # fmt: skip
    assert gathered[0] == gathered[1] == gathered[2]
    some = next(iter(gathered[0].values()))
    assert [t["trial_id"] for t in some] == list(range(8)) and len({t["learning_rate"] for t in some}) == 8


@pytest.fixture(scope="module")
def nqm_study(tmp_path_factory):
    """A momentum and an sgd study on the NQM through the tune job: its trials and curves tables."""
    from batch_science.tuning.study_config import check_study
    from batch_science.tuning.tune_job import run_tune_job

    folder = tmp_path_factory.mktemp("nqm_record")
    space = {"learning_rate": {"min": 0.01, "max": 3.0, "scale": "log"}}
    config = check_study({
        "study": "record", "trials": 12, "trials_per_job": 12,
        "search_spaces": {"sgd": space, "momentum": {**space, "momentum": {"min": 0.0, "max": 0.95}}},
        "workloads": {"q": {"dataset": {"name": "nqm"}, "nqm": {"target_loss": 0.5, "dimension": 20},
                            "step_budget": 60, "eval_every": 3, "batch_sizes": [8], "optimizers": ["sgd", "momentum"]}},
    })  # fmt: skip
    tables = []
    for study in (Study("q", "sgd", 8), Study("q", "momentum", 8)):
        out = folder / study.optimizer
        run_tune_job(config, study, 0, out.with_suffix(".t.parquet"), out.with_suffix(".c.parquet"), out / "partial")
        tables.append((pd.read_parquet(out.with_suffix(".t.parquet")), pd.read_parquet(out.with_suffix(".c.parquet"))))
    return tables


def test_recorded_effective_learning_rate_is_lr_over_one_minus_momentum(nqm_study):
    (sgd, _), (momentum, _) = nqm_study
    assert (sgd["momentum"] == 0).all() and (sgd["effective_learning_rate"] == sgd["learning_rate"]).all()
    assert momentum["momentum"].nunique() == len(momentum)
    for _, row in momentum.iterrows():
        assert row["effective_learning_rate"] == pytest.approx(row["learning_rate"] / (1 - row["momentum"]), rel=1e-15)


def test_best_metric_and_step_are_the_curves_best_while_feasible(nqm_study):
    for trials, curves in nqm_study:
        for _, trial in trials.iterrows():
            curve = curves[curves["trial_id"] == trial["trial_id"]]
            if trial["status"] == "infeasible":
                curve = curve.iloc[:-1]  # the evaluation that found it diverged does not count
            best = curve["val_cross_entropy"].to_numpy()
            first = int(np.nanargmin(best))
            assert trial["best_val_metric"] == best[first], trial["trial_id"]
            assert trial["best_step"] == curve["step"].iloc[first], trial["trial_id"]
            reached = curve[curve["val_cross_entropy"] < trial["target_value"]]
            if trial["status"] == "reached":
                assert trial["steps_to_result"] == reached["step"].iloc[0]
            else:
                assert reached.empty or trial["status"] == "infeasible"
