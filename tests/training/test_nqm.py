"""The noisy quadratic model: exact recursion vs sampling, and the textbook scaling limits."""

import math

import numpy as np
import pytest

from batch_science.training.nqm import (
    Quadratic,
    expected_loss_curve,
    run_trials,
    steps_to_target,
    tuned_steps_to_target,
)
from batch_science.trials import INFEASIBLE, REACHED, Target

SMALL = Quadratic(dimension=100, spectrum_exponent=1.0)
TARGET = 0.1 * SMALL.initial_loss
LEARNING_RATES = np.geomspace(1e-3, 2, 48)
MOMENTA = [0.5, 0.8, 0.9, 0.95, 0.98]


def sampled_loss(quadratic, optimizer, batch_size, learning_rate, momentum, steps, replicas, seed=0):
    """Mean and standard error of the loss over sampled runs, updated exactly as the engine updates."""
    rng = np.random.default_rng(seed)
    h, c = quadratic.curvature, quadratic.noise
    theta = rng.standard_normal((replicas, quadratic.dimension))
    velocity = np.zeros_like(theta)
    losses = []
    for _ in range(steps + 1):
        per_run = 0.5 * (h * theta**2).sum(axis=1)
        losses.append((per_run.mean(), per_run.std(ddof=1) / math.sqrt(replicas)))
        gradient = h * theta + rng.standard_normal(theta.shape) * np.sqrt(c / batch_size)
        if optimizer == "sgd":
            theta = theta - learning_rate * gradient
        else:
            velocity = momentum * velocity + gradient
            direction = gradient + momentum * velocity if optimizer == "nesterov" else velocity
            theta = theta - learning_rate * direction
    return np.array(losses)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_expected_loss_recursion_matches_monte_carlo(optimizer):
    quadratic = Quadratic(dimension=6, spectrum_exponent=1.0)
    exact = expected_loss_curve(quadratic, optimizer, batch_size=2, learning_rate=0.4, momentum=0.7, steps=40)[:, 0]
    sampled = sampled_loss(quadratic, optimizer, 2, 0.4, 0.7, steps=40, replicas=40_000)
    # The loss moves by a factor of several over the run, so agreement is not a constant.
    assert exact[0] / exact.min() > 2
    z = np.abs(exact - sampled[:, 0]) / sampled[:, 1]
    assert z.max() < 5, f"recursion off the sampled mean by {z.max():.1f} standard errors"


def sampled_adam_loss(quadratic, batch_size, learning_rate, beta1, power, steps, replicas, seed=0):
    """Mean and standard error of the loss over sampled runs of the NQM's Adam, written from its
    definition: m = b1 m + (1 - b1) g, theta -= lr / (1 - b1^t) h^-p m at the t-th step."""
    rng = np.random.default_rng(seed)
    h, c = quadratic.curvature, quadratic.noise
    theta = rng.standard_normal((replicas, quadratic.dimension))
    first = np.zeros_like(theta)
    losses = []
    for t in range(1, steps + 2):
        per_run = 0.5 * (h * theta**2).sum(axis=1)
        losses.append((per_run.mean(), per_run.std(ddof=1) / math.sqrt(replicas)))
        gradient = h * theta + rng.standard_normal(theta.shape) * np.sqrt(c / batch_size)
        first = beta1 * first + (1 - beta1) * gradient
        theta = theta - learning_rate / (1 - beta1**t) * h**-power * first
    return np.array(losses)


@pytest.mark.parametrize("power", [0.0, 0.5])
def test_adam_recursion_matches_monte_carlo_of_preconditioned_first_moment(power):
    quadratic = Quadratic(dimension=6, spectrum_exponent=1.0)
    exact = expected_loss_curve(
        quadratic, "adam", batch_size=2, learning_rate=0.3, momentum=0.7, steps=40, preconditioner_power=power
    )[:, 0]
    sampled = sampled_adam_loss(quadratic, 2, 0.3, 0.7, power, steps=40, replicas=40_000)
    assert exact[0] / exact.min() > 2
    z = np.abs(exact - sampled[:, 0]) / sampled[:, 1]
    assert z.max() < 5, f"recursion off the sampled mean by {z.max():.1f} standard errors"


def test_adam_without_averaging_or_preconditioning_is_sgd():
    """beta1 = 0 and power 0: m = g and no bias correction left, so the NQM's Adam is SGD exactly."""
    np.testing.assert_allclose(
        expected_loss_curve(SMALL, "adam", 8, 0.5, momentum=0.0, steps=50, preconditioner_power=0.0),
        expected_loss_curve(SMALL, "sgd", 8, 0.5, steps=50),
        rtol=1e-12,
    )


def test_preconditioned_adam_scales_perfectly_at_small_batch_and_needs_fewer_steps_at_large_batch():
    """Zhang et al. (2019): at small batch every optimizer halves its steps when the batch doubles;
    at large batch, where curvature rather than noise limits, preconditioning by H^-0.5 shortens
    training well beyond what momentum does."""

    def tuned(optimizer, batch_size, power=0.0):
        return tuned_steps_to_target(
            SMALL, optimizer, batch_size, TARGET, LEARNING_RATES, MOMENTA, preconditioner_power=power
        )["steps"]

    small = [tuned("adam", b, 0.5) for b in (1, 2, 4)]
    ratios = np.array(small[1:]) / np.array(small[:-1])
    assert np.all((ratios > 0.45) & (ratios < 0.56)), f"steps {small}"
    assert tuned("adam", 4096, 0.5) < 0.6 * tuned("momentum", 4096)
    assert tuned("adam", 4096, 0.0) >= 0.9 * tuned("momentum", 4096)  # without preconditioning no such gain


def test_momentum_without_momentum_is_sgd():
    sgd = expected_loss_curve(SMALL, "sgd", 8, 0.5, steps=50)
    for optimizer in ("momentum", "nesterov"):
        np.testing.assert_allclose(
            expected_loss_curve(SMALL, optimizer, 8, 0.5, momentum=0.0, steps=50), sgd, rtol=1e-12
        )


def test_noise_floor_grows_with_learning_rate_over_batch_size():
    # Stationary SGD variance per coordinate is a c_i / (B h_i (2 - a h_i)), about a / (2B) here.
    rates = np.array([[0.5], [1.0]])
    floor = expected_loss_curve(SMALL, "sgd", 64, rates[:, 0], steps=5_000)[-1]
    expected = 0.5 * (SMALL.curvature * rates / (64 * (2 - rates * SMALL.curvature))).sum(axis=1)
    np.testing.assert_allclose(floor, expected, rtol=1e-3)


@pytest.mark.parametrize("optimizer, momenta", [("sgd", [0.0]), ("momentum", MOMENTA)])
def test_small_batch_doubling_halves_steps(optimizer, momenta):
    steps = [tuned_steps_to_target(SMALL, optimizer, b, TARGET, LEARNING_RATES, momenta)["steps"] for b in (1, 2, 4)]
    ratios = np.array(steps[1:]) / np.array(steps[:-1])
    assert np.all((ratios > 0.45) & (ratios < 0.56)), f"steps {steps}"


@pytest.mark.parametrize("optimizer, momenta", [("sgd", [0.0]), ("momentum", MOMENTA)])
def test_large_batch_approaches_deterministic_steps(optimizer, momenta):
    deterministic = tuned_steps_to_target(SMALL, optimizer, math.inf, TARGET, LEARNING_RATES, momenta)["steps"]
    steps = [
        tuned_steps_to_target(SMALL, optimizer, b, TARGET, LEARNING_RATES, momenta)["steps"] for b in (64, 1024, 16384)
    ]
    assert all(a >= b for a, b in zip(steps, steps[1:])), f"steps not falling with batch size: {steps}"
    assert all(s >= deterministic for s in steps)
    assert steps[-1] <= 1.15 * deterministic, f"{steps[-1]} steps at B=16384 vs {deterministic} deterministic"
    assert steps[0] > steps[-1]  # 64 is not yet in the saturated regime


def test_momentum_helps_at_large_batch_only():
    small_sgd, small_momentum, large_sgd, large_momentum = (
        tuned_steps_to_target(SMALL, optimizer, b, TARGET, LEARNING_RATES, momenta)["steps"]
        for b in (1, 4096)
        for optimizer, momenta in (("sgd", [0.0]), ("momentum", MOMENTA))
    )
    assert abs(small_momentum / small_sgd - 1) < 0.05
    assert large_momentum < 0.75 * large_sgd


def test_steps_to_target_is_first_step_below_target():
    curve = expected_loss_curve(SMALL, "momentum", 16, 0.3, momentum=0.8, steps=400)[:, 0]
    first = int(np.flatnonzero(curve < TARGET)[0])
    assert steps_to_target(SMALL, "momentum", 16, [0.3], [0.8], TARGET, 400)[0] == first


def _trial(trial_id, learning_rate, momentum=0.0, budget=2000, eval_every=1):
    return {
        "trial_id": trial_id,
        "learning_rate": learning_rate,
        "momentum": momentum,
        "decay_steps": 0,
        "end_factor": 1.0,
        "label_smoothing": 0.0,
        "seed": 0,
        "step_budget": budget,
        "eval_every": eval_every,
    }


def test_trial_runner_agrees_with_recursion_and_marks_divergence():
    spec = {"dimension": 100, "spectrum_exponent": 1.0}
    finished = []
    outcomes = run_trials(
        spec,
        "momentum",
        16,
        [_trial(0, 0.3, 0.8), _trial(1, 5.0, 0.9)],
        Target("cross_entropy", TARGET),
        on_finish=finished.append,
    )
    assert outcomes[0].status == REACHED
    assert outcomes[0].steps_to_result == steps_to_target(SMALL, "momentum", 16, [0.3], [0.8], TARGET, 2000)[0]
    assert outcomes[1].status == INFEASIBLE and math.isnan(outcomes[1].steps_to_result)
    assert len(finished) == 2
    assert set(outcomes[0].curve[0]) == {"step", "train_cross_entropy", "val_cross_entropy", "val_error"}


def test_trial_runner_reports_at_evaluation_steps_only():
    exact = steps_to_target(SMALL, "sgd", 16, [0.5], [0.0], TARGET, 2000)[0]
    (outcome,) = run_trials(
        {"dimension": 100, "spectrum_exponent": 1.0},
        "sgd",
        16,
        [_trial(0, 0.5, eval_every=7)],
        Target("cross_entropy", TARGET),
    )
    assert outcome.steps_to_result == 7 * math.ceil(exact / 7)
    assert all(row["step"] % 7 == 0 for row in outcome.curve)


def _nqm_config(**nqm):
    return {
        "study": "t",
        "search_spaces": {"sgd": {"learning_rate": {"min": 0.01, "max": 1.0, "scale": "log"}}},
        "workloads": {
            "q": {
                "dataset": {"name": "nqm"},
                "nqm": {"target_loss": 0.1, **nqm},
                "step_budget": 100,
                "batch_sizes": [1, 2],
                "optimizers": ["sgd"],
            }
        },
    }


def test_nqm_config_derives_target_and_model_and_revalidates():
    from batch_science.tuning.study_config import check_study

    config = check_study(_nqm_config())
    workload = config["workloads"]["q"]
    assert workload["target"] == {"metric": "cross_entropy", "value": 0.1, "direction": "minimize"}
    assert workload["nqm"] == {"dimension": 1000, "spectrum_exponent": 1.0, "target_loss": 0.1}
    assert check_study(config) == config  # the tune script validates the validated config again


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda c: c["workloads"]["q"]["nqm"].update(target_loss=50.0), "workloads.q.nqm.target_loss"),
        (lambda c: c["workloads"]["q"].update(target={"metric": "error", "value": 0.1}), "workloads.q.target"),
        (lambda c: c["workloads"]["q"].pop("nqm"), "workloads.q"),
        (lambda c: c["workloads"]["q"]["dataset"].update(name="mnist1d"), "workloads.q"),
    ],
)
def test_bad_nqm_config_names_the_key(change, key):
    from batch_science.config import ConfigError
    from batch_science.tuning.study_config import check_study

    config = _nqm_config()
    change(config)
    with pytest.raises(ConfigError, match=rf"config key {key}\b") as error:
        check_study(config)
    assert "\n" not in str(error.value)


def test_nqm_study_goes_through_tune_aggregate_and_fit(tmp_path):
    import pandas as pd

    from batch_science.analysis.aggregate import aggregate_study
    from batch_science.analysis.fit import fit_workloads
    from batch_science.config import Study, studies
    from batch_science.tuning.study_config import check_study
    from batch_science.tuning.tune_job import run_tune_job

    config = _nqm_config(dimension=100)
    config["workloads"]["q"].update(batch_sizes=[1, 2, 64], step_budget=3000, eval_every=1)
    config.update(trials=24, trials_per_job=24)
    config = check_study(config)
    trial_files, curve_files = [], []
    for study in studies(config):
        trial_files.append(tmp_path / f"t{study.batch_size}.parquet")
        curve_files.append(tmp_path / f"c{study.batch_size}.parquet")
        run_tune_job(config, study, 0, trial_files[-1], curve_files[-1], tmp_path / f"partial{study.batch_size}")
    out = {
        name: tmp_path / f"{name}.{ext}"
        for name, ext in (("trials", "parquet"), ("curves", "parquet"), ("steps", "csv"))
    }
    aggregate_study(trial_files, curve_files, **out)
    trials, steps = pd.read_parquet(out["trials"]), pd.read_csv(out["steps"]).set_index("batch_size")
    assert {
        "learning_rate",
        "momentum",
        "effective_learning_rate",
        "status",
        "steps_to_result",
        "target_metric",
        "dataset",
    } <= set(trials)
    assert set(trials["status"]) <= {"reached", "not_reached", "infeasible"} and (trials["status"] == "reached").any()
    assert 0.4 < steps.loc[2, "steps_to_result"] / steps.loc[1, "steps_to_result"] < 0.65
    assert steps.loc[64, "steps_to_result"] < steps.loc[2, "steps_to_result"] / 4
    fits, _ = fit_workloads(trials, n_bootstrap=5)
    assert fits["b_crit"].iloc[0] > 0

    # A rerun reuses every finished trial from the partial folder and writes the same table.
    before = pd.read_parquet(trial_files[0])
    run_tune_job(config, Study("q", "sgd", 1), 0, trial_files[0], curve_files[0], tmp_path / "partial1")
    pd.testing.assert_frame_equal(pd.read_parquet(trial_files[0]), before)
