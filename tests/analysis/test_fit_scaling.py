"""The scaling fit recovers known S_min and B_crit; intervals cover them and shrink with trials."""

import numpy as np
import pytest

from batch_science.analysis.fit import fit_scaling, fit_workloads, scaling_curve
from synthetic import BATCH_SIZES, synthetic_trials


def test_exact_curve_is_recovered():
    s_min, b_crit = fit_scaling(BATCH_SIZES, scaling_curve(BATCH_SIZES, 40.0, 300.0))
    assert s_min == pytest.approx(40.0, rel=1e-4)
    assert b_crit == pytest.approx(300.0, rel=1e-4)


def test_intervals_cover_truth_and_shrink_with_more_trials():
    widths = []
    for n_trials in (4, 32):
        fits, bootstrap = fit_workloads(synthetic_trials(n_trials), n_bootstrap=60, confidence=0.9)
        fit = fits.iloc[0]
        assert fit["b_crit_lo"] <= fit["b_crit"] <= fit["b_crit_hi"]
        assert 120 < fit["b_crit"] < 330
        assert len(bootstrap) == 60
        widths.append(np.log(fit["b_crit_hi"] / fit["b_crit_lo"]))
    assert widths[1] < widths[0]


def test_regime_boundaries_follow_the_tolerance():
    fit = fit_workloads(synthetic_trials(8), n_bootstrap=0, tolerance=0.1)[0].iloc[0]
    assert fit["b_perfect_end"] == pytest.approx(0.1 * fit["b_crit"])
    assert fit["b_max_useful"] == pytest.approx(10 * fit["b_crit"])
    assert fit["log2_slope_small_batch"] < -0.8
