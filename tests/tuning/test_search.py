"""Quasi-random search: points inside the space, stable trial ids, reproducible."""

import numpy as np

from batch_science.config import Study
from batch_science.tuning.search import sample_points, study_space, study_trials

SPACE = {
    "learning_rate": {"min": 1e-3, "max": 10.0, "scale": "log"},
    "momentum": {"min": 0.0, "max": 0.999, "scale": "reverse_log"},
    "decay_fraction": {"min": 0.5, "max": 1.0},
    "end_factor": {"min": 1e-3, "max": 0.1, "scale": "log"},
    "label_smoothing": {"values": [0.0, 0.01, 0.1]},
}


def test_points_lie_in_the_space_and_cover_it():
    points = sample_points(SPACE, 256, seed=1)
    lr, one_minus_m = points["learning_rate"], 1 - points["momentum"]
    assert lr.min() >= 1e-3 and lr.max() <= 10
    assert one_minus_m.min() >= 1e-3 - 1e-12 and one_minus_m.max() <= 1 + 1e-12
    # Log-uniform: about half the points below the geometric midpoint.
    assert 0.4 < np.mean(lr < 0.1) < 0.6
    assert 0.4 < np.mean(one_minus_m < np.sqrt(1e-3)) < 0.6
    assert set(points["label_smoothing"]) == {0.0, 0.01, 0.1}
    assert np.all((points["decay_fraction"] >= 0.5) & (points["decay_fraction"] <= 1.0))


def test_trial_i_is_the_same_point_however_trials_are_split(tiny_config):
    study = Study("mnist1d_mlp", "nesterov", 32)
    whole = study_trials(tiny_config, study, range(4))
    split = study_trials(tiny_config, study, [2, 3]) + study_trials(tiny_config, study, [0, 1])
    more = study_trials(dict(tiny_config, trials=64), study, range(64))[:4]
    key = lambda t: t["trial_id"]  # noqa: E731
    assert sorted(split, key=key) == whole
    assert more == whole


def test_studies_get_their_own_points_and_seeds(tiny_config):
    a = study_trials(tiny_config, Study("mnist1d_mlp", "nesterov", 32), range(4))
    b = study_trials(tiny_config, Study("mnist1d_mlp", "nesterov", 128), range(4))
    assert [t["learning_rate"] for t in a] != [t["learning_rate"] for t in b]
    assert len({t["seed"] for t in a + b}) == 8


def test_sgd_has_no_momentum_and_constant_schedule_no_decay(tiny_config):
    space = study_space(tiny_config, Study("mnist1d_mlp", "sgd", 32))
    assert space["momentum"] == 0.0
    trials = study_trials(tiny_config, Study("mnist1d_mlp", "sgd", 32), range(4))
    assert all(t["momentum"] == 0 and t["decay_steps"] == 0 and t["end_factor"] == 1 for t in trials)


def test_linear_decay_steps_are_a_fraction_of_the_budget(tiny_config):
    trials = study_trials(tiny_config, Study("mnist1d_mlp", "nesterov", 32), range(4))
    for trial in trials:
        assert 0.5 * trial["step_budget"] <= trial["decay_steps"] <= trial["step_budget"]
