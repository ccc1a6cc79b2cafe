"""Scaling-curve fits: S(B) = S_min (1 + B_crit / B), with bootstrap intervals over trials.

From the fitted curve, with tolerance tol: perfect scaling ends where steps exceed the
perfect-scaling asymptote S_min B_crit / B by a factor (1 + tol), i.e. at B = tol * B_crit;
the maximal useful batch size is where steps come within (1 + tol) of S_min, B = B_crit / tol.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from batch_science.analysis.steps import best_trials

FIT_KEYS = ["workload", "optimizer"]


def scaling_curve(batch_size, s_min: float, b_crit: float):
    return s_min * (1 + b_crit / np.asarray(batch_size, dtype=float))


def fit_scaling(batch_sizes, steps) -> tuple[float, float]:
    """Least squares in log steps (every batch size weighs the same); returns (S_min, B_crit)."""
    b = np.asarray(batch_sizes, dtype=float)
    s = np.asarray(steps, dtype=float)
    keep = np.isfinite(s) & (s > 0)
    b, s = b[keep], s[keep]
    if len(b) < 2:
        return math.nan, math.nan
    log_s = np.log(s)

    def residuals(p):
        return p[0] + np.log1p(np.exp(p[1]) / b) - log_s

    start = np.array([np.log(s.min()), np.log(np.median(b))])
    # Bounds keep B_crit within a wide but finite range around the measured batch sizes.
    bounds = ([-np.inf, np.log(b.min()) - 10], [np.inf, np.log(b.max()) + 10])
    result = least_squares(residuals, start, bounds=bounds)
    return float(np.exp(result.x[0])), float(np.exp(result.x[1]))


def _log2_slope(batch_sizes, steps, doublings: int = 3) -> float:
    """Log2-log2 slope of steps over the first `doublings` doublings of the batch size."""
    frame = pd.DataFrame({"b": batch_sizes, "s": steps}).dropna().sort_values("b").head(doublings + 1)
    if len(frame) < 2:
        return math.nan
    return float(np.polyfit(np.log2(frame["b"]), np.log2(frame["s"]), 1)[0])


def fit_workloads(
    trials: pd.DataFrame, n_bootstrap: int = 200, confidence: float = 0.9, tolerance: float = 0.1, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fits per (workload, optimizer): S_min, B_crit, regime boundaries and intervals; and the bootstrap samples."""
    rng = np.random.default_rng(seed)
    alpha = (1 - confidence) / 2
    rows, bootstrap = [], []
    for key, group in trials.groupby(FIT_KEYS, sort=True):
        best = best_trials(group)
        s_min, b_crit = fit_scaling(best["batch_size"], best["steps_to_result"])
        samples = []
        studies = [study for _, study in group.groupby("batch_size")]
        for _ in range(n_bootstrap):
            resampled = pd.concat([study.iloc[rng.integers(0, len(study), len(study))] for study in studies])
            b = best_trials(resampled)
            samples.append(fit_scaling(b["batch_size"], b["steps_to_result"]))
        samples = np.array(samples) if samples else np.full((1, 2), np.nan)
        bootstrap += [{**dict(zip(FIT_KEYS, key)), "sample": i, "s_min": s, "b_crit": c} for i, (s, c) in enumerate(samples[:n_bootstrap])]

        def interval(values):
            values = values[np.isfinite(values)]
            return (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))) if len(values) else (math.nan, math.nan)

        (s_lo, s_hi), (c_lo, c_hi) = interval(samples[:, 0]), interval(samples[:, 1])
        measured = best["batch_size"][np.isfinite(best["steps_to_result"])]
        rows.append(
            {
                **dict(zip(FIT_KEYS, key)),
                "s_min": s_min, "s_min_lo": s_lo, "s_min_hi": s_hi,
                "b_crit": b_crit, "b_crit_lo": c_lo, "b_crit_hi": c_hi,
                "b_perfect_end": tolerance * b_crit, "b_perfect_end_lo": tolerance * c_lo, "b_perfect_end_hi": tolerance * c_hi,
                "b_max_useful": b_crit / tolerance, "b_max_useful_lo": c_lo / tolerance, "b_max_useful_hi": c_hi / tolerance,
                # B_crit is only pinned down if its interval lies inside the measured batch sizes.
                "b_crit_constrained": bool(len(measured) and c_lo >= measured.min() and c_hi <= measured.max()),
                "log2_slope_small_batch": _log2_slope(best["batch_size"], best["steps_to_result"]),
                "n_batch_sizes": int(len(measured)),
                "n_bootstrap": n_bootstrap, "confidence": confidence, "tolerance": tolerance,
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(bootstrap, columns=[*FIT_KEYS, "sample", "s_min", "b_crit"])
