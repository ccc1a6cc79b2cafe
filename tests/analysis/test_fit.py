"""The piecewise log-log fit finds the three regimes; both fits say what the data cannot constrain."""

import numpy as np
import pytest

from batch_science.analysis.fit import fit_piecewise, fit_workloads, piecewise_boundaries, piecewise_curve
from synthetic import BATCH_SIZES, synthetic_trials

# Perfect scaling up to 64, plateau of 100 steps from 1024 on.
THREE_REGIMES = dict(e_min=64000.0, s_plateau=100.0, transition_start=64.0, transition_end=1024.0)


def three_regimes(batch_size):
    return piecewise_curve(batch_size, **THREE_REGIMES)


def test_piecewise_fit_recovers_exact_regimes():
    fitted = fit_piecewise(BATCH_SIZES, three_regimes(BATCH_SIZES))
    assert fitted == pytest.approx(tuple(THREE_REGIMES.values()), rel=1e-6)


def test_piecewise_curve_has_slope_minus_one_then_a_plateau():
    b = np.array([8.0, 16.0, 2048.0, 4096.0])
    s = three_regimes(b)
    assert s[0] / s[1] == pytest.approx(2.0)
    assert s[2] == s[3] == pytest.approx(100.0)


def test_perfect_scaling_throughout_gives_only_a_lower_bound():
    fits, _ = fit_workloads(synthetic_trials(8, steps=lambda b: 1e5 / b, noise=0.02), n_bootstrap=30)
    fit = fits.iloc[0]
    assert fit["piecewise_b_perfect_end"] >= BATCH_SIZES.max()
    assert fit["piecewise_b_perfect_end_constraint"] == "lower bound only"
    assert fit["piecewise_b_max_useful_constraint"] == "lower bound only"
    assert fit["b_crit_constraint"] == "lower bound only" and not fit["b_crit_constrained"]
    assert fit["s_min_constraint"] == fit["piecewise_s_plateau_constraint"] == "extrapolated"


def test_plateau_throughout_gives_only_an_upper_bound():
    fits, _ = fit_workloads(synthetic_trials(8, steps=lambda b: 50.0 + 0 * b, noise=0.02), n_bootstrap=30)
    fit = fits.iloc[0]
    assert fit["piecewise_b_max_useful_constraint"] == "upper bound only"
    assert fit["piecewise_b_perfect_end_constraint"] == "upper bound only"
    assert fit["piecewise_s_plateau"] == pytest.approx(50.0, rel=0.05)
    assert fit["piecewise_s_plateau_constraint"] == "constrained"


def interval_width(fit, name):
    return np.log(fit[f"{name}_hi"] / fit[f"{name}_lo"])


def test_regime_boundaries_lie_a_tolerance_away_from_the_asymptotes():
    end, useful = piecewise_boundaries(**THREE_REGIMES, tolerance=0.1)
    assert three_regimes(end) == pytest.approx(1.1 * THREE_REGIMES["e_min"] / end)
    assert three_regimes(useful) == pytest.approx(1.1 * THREE_REGIMES["s_plateau"])
    assert 64 < end < useful < 1024


def test_piecewise_intervals_cover_truth_and_shrink_with_more_trials():
    fits = [
        fit_workloads(synthetic_trials(n, steps=three_regimes, noise=0.2, seed=1), n_bootstrap=40)[0].iloc[0]
        for n in (3, 48)
    ]
    truth = dict(
        zip(["piecewise_b_perfect_end", "piecewise_b_max_useful"], piecewise_boundaries(**THREE_REGIMES, tolerance=0.1))
    )
    for name, value in [*truth.items(), ("piecewise_s_plateau", 100.0)]:
        # The best of 48 trials sits within a few percent above the true curve.
        assert fits[1][f"{name}_lo"] <= value * 1.1 and fits[1][f"{name}_hi"] >= value / 1.1, name
        assert interval_width(fits[1], name) < interval_width(fits[0], name), name
    assert fits[1]["piecewise_b_perfect_end_constraint"] == "constrained"
    assert fits[1]["piecewise_b_max_useful_constraint"] == "constrained"


def test_gradient_noise_fit_intervals_shrink_for_both_parameters():
    fits = [
        fit_workloads(synthetic_trials(n, s_min=40.0, b_crit=300.0, seed=2), n_bootstrap=40)[0].iloc[0] for n in (3, 48)
    ]
    for name, truth in [("s_min", 40.0), ("b_crit", 300.0)]:
        assert fits[1][f"{name}_lo"] <= truth * 1.15 and fits[1][f"{name}_hi"] >= truth * 0.85, name
        assert interval_width(fits[1], name) < interval_width(fits[0], name), name
    assert fits[1]["b_crit_constraint"] == "constrained"


def test_bootstrap_table_holds_every_parameter_of_every_sample():
    fits, bootstrap = fit_workloads(synthetic_trials(4, steps=three_regimes), n_bootstrap=7)
    assert len(bootstrap) == 7
    assert {
        "s_min",
        "b_crit",
        "piecewise_e_min",
        "piecewise_s_plateau",
        "piecewise_b_perfect_end",
        "piecewise_b_max_useful",
        "b_max_useful",
    } <= set(bootstrap)
    assert fits.iloc[0]["s_min_lo"] <= fits.iloc[0]["s_min_hi"]


def test_two_batch_sizes_constrain_nothing():
    fit = fit_workloads(synthetic_trials(8, batch_sizes=[32, 256]), n_bootstrap=10)[0].iloc[0]
    assert fit["s_min"] > 0 and fit["b_crit_constraint"] == "unconstrained" and not fit["b_crit_constrained"]
    assert np.isnan(fit["piecewise_b_perfect_end"])  # the piecewise fit needs three batch sizes
