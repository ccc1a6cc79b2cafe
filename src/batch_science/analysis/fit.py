"""Scaling-curve fits per (workload, optimizer), with bootstrap intervals over trials.

Two descriptions of steps to result S against batch size B:

* the gradient-noise model S(B) = S_min (1 + B_crit / B) (McCandlish et al. 2018);
* a piecewise-linear fit in log-log space (the paper's three regimes): slope -1 up to a batch
  size B_1, a straight transition to B_2, and a plateau S_plateau from B_2 on. It assumes no
  functional form for the transition. On the slope -1 segment S = E_min / B, E_min being the
  examples to result while scaling is perfect.

Both fits mark the regime boundaries the same way, on the fitted curve with tolerance tol: perfect
scaling ends where steps exceed the perfect-scaling line E_min / B by a factor (1 + tol), and the
maximal useful batch size is where steps come within (1 + tol) of the plateau. For S_min (1 +
B_crit / B), with E_min = S_min B_crit, that is B = tol * B_crit and B = B_crit / tol. (The kinks
B_1, B_2 themselves are not used: a transition of almost zero slope through noisy plateau data can put them anywhere.)
A regime counts as seen only with two measured batch sizes in it: with fewer, the piecewise fit
puts its boundary beyond the data (end of perfect scaling 0, maximal useful batch size inf).

A boundary is reported as constrained only if its bootstrap interval lies inside the measured
batch sizes; otherwise the data give only a lower or upper bound, or none, and the fits say so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from batch_science.analysis.steps import best_is_exact, best_trials

FIT_KEYS = ["workload", "optimizer"]
# Bootstrap sample columns: the fitted parameters of every resample.
PIECEWISE = ["piecewise_e_min", "piecewise_s_plateau", "piecewise_transition_start", "piecewise_transition_end"]
BOUNDARIES = ["b_perfect_end", "b_max_useful", "piecewise_b_perfect_end", "piecewise_b_max_useful"]
PARAMETERS = ["s_min", "b_crit", *PIECEWISE, *BOUNDARIES]
# Grid of the piecewise boundaries, in log2 batch size: this far beyond the data, this fine.
PIECEWISE_MARGIN_LOG2 = 1.0
PIECEWISE_GRID_LOG2 = 0.1
# Fewer batch sizes that reach the goal than this, and no fitted quantity counts as constrained.
MIN_BATCH_SIZES = 3
# What an interval is when some bootstrap resample's best trial is unknown: pruned trials (config
# prune) stopped early, and a resample without the trial that stopped them needs their full curves.
NEEDS_COMPLETE_TRIALS = "needs complete trials (pruned)"


def scaling_curve(batch_size, s_min: float, b_crit: float):
    return s_min * (1 + b_crit / np.asarray(batch_size, dtype=float))


def fit_scaling(batch_sizes, steps) -> tuple[float, float]:
    """Least squares in log steps (every batch size weighs the same); returns (S_min, B_crit)."""
    b, s = _reached_points(batch_sizes, steps)
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


def _reached_points(batch_sizes, steps) -> tuple[np.ndarray, np.ndarray]:
    """The batch sizes whose study reached the goal, with their steps (finite and positive)."""
    b = np.asarray(batch_sizes, dtype=float)
    s = np.asarray(steps, dtype=float)
    keep = np.isfinite(s) & (s > 0)
    return b[keep], s[keep]


def piecewise_curve(batch_size, e_min: float, s_plateau: float, transition_start: float, transition_end: float):
    """Steps of the piecewise log-log fit: E_min / B below transition_start, s_plateau above transition_end."""
    x = np.log2(np.asarray(batch_size, dtype=float))
    a, p, u1, u2 = np.log2(e_min), np.log2(s_plateau), np.log2(transition_start), np.log2(transition_end)
    w = np.clip((x - u1) / (u2 - u1), 0, 1) if u2 > u1 else (x >= u2).astype(float)
    return 2.0 ** np.where(x < u1, a - x, (1 - w) * (a - u1) + w * p)


def fit_piecewise(batch_sizes, steps) -> tuple[float, float, float, float]:
    """Least squares in log2 steps over a grid of boundaries (B_1 <= B_2); returns
    (E_min, S_plateau, B_1, B_2) as piecewise_curve takes them.

    For each boundary pair the two levels are linear least squares; pairs whose transition
    would be steeper than -1 or rising are skipped (their optimum is a pair with B_1 = B_2).
    Where the data do not reach a regime its level is set by continuity. Among equally good
    pairs perfect scaling lasts longest (up to the largest measured batch size) and the plateau
    starts earliest, so an unreached boundary sits at the data's edge.
    """
    b, s = _reached_points(batch_sizes, steps)
    if len(np.unique(b)) < 3:
        return (math.nan,) * 4
    x, y = np.log2(b), np.log2(s)
    grid = np.arange(x.min() - PIECEWISE_MARGIN_LOG2, x.max() + PIECEWISE_MARGIN_LOG2 + 1e-9, PIECEWISE_GRID_LOG2)
    i1, i2 = np.triu_indices(len(grid))
    u1, u2 = grid[i1][:, None], grid[i2][:, None]
    xx = x[None, :]
    width = np.where(u2 > u1, u2 - u1, 1.0)
    w = np.where(xx < u1, 0.0, np.where(xx >= u2, 1.0, (xx - u1) / width))
    # y ~ a * A + p * P + C on every point: A, P the weights of the line and plateau levels.
    A = np.where(xx < u1, 1.0, 1 - w)
    P = np.where(xx < u1, 0.0, w)
    C = np.where(xx < u1, -xx, -(1 - w) * u1)
    r = y[None, :] - C
    saa, spp, sap = (A * A).sum(1), (P * P).sum(1), (A * P).sum(1)
    sar, spr = (A * r).sum(1), (P * r).sum(1)
    det = saa * spp - sap**2
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(det > 1e-9, (spp * sar - sap * spr) / det, sar / saa)
        p = np.where(det > 1e-9, (saa * spr - sap * sar) / det, spr / spp)
    u1, u2 = u1[:, 0], u2[:, 0]
    only_line, only_plateau = spp < 1e-12, saa < 1e-12
    p = np.where(only_line, a - u2, p)  # plateau unseen: the line runs to B_2
    a = np.where(only_plateau, p + u1, a)  # line unseen: it meets the plateau at B_1
    valid = np.isfinite(a) & np.isfinite(p) & (p <= a - u1 + 1e-9) & (p >= a - u2 - 1e-9)
    sse = np.where(valid, ((a[:, None] * A + p[:, None] * P + C - y[None, :]) ** 2).sum(1), np.inf)
    ties = np.flatnonzero(sse <= sse.min() + 1e-9)
    ties = ties[u1[ties] <= x.max() + 1e-9] if (u1[ties] <= x.max() + 1e-9).any() else ties
    ties = ties[u1[ties] >= u1[ties].max() - 1e-9]
    best = int(ties[np.argmin(u2[ties])])
    return float(2 ** a[best]), float(2 ** p[best]), float(2 ** u1[best]), float(2 ** u2[best])


def piecewise_boundaries(e_min, s_plateau, transition_start, transition_end, tolerance: float) -> tuple[float, float]:
    """(end of perfect scaling, maximal useful batch size) on the piecewise curve at this tolerance."""
    a, p, u1, u2 = (math.log2(v) for v in (e_min, s_plateau, transition_start, transition_end))
    t = math.log2(1 + tolerance)
    width, drop = u2 - u1, a - u1 - p  # the transition's length and fall, in doublings
    # Excess over the perfect-scaling line: 0 before u1, rising (width - drop) over the transition, then 1 per doubling.
    excess_at_end = width - drop
    end = u1 + t * width / excess_at_end if excess_at_end >= t and excess_at_end > 0 else u2 + t - excess_at_end
    # Height above the plateau: falls 1 per doubling before u1, then `drop` over the transition.
    useful = u2 - t * width / drop if drop >= t and drop > 0 else u1 - (t - drop)
    return 2.0**end, 2.0**useful


def _log2_slope(batch_sizes, steps, doublings: int = 3) -> float:
    """Log2-log2 slope of steps over the first `doublings` doublings of the batch size."""
    frame = pd.DataFrame({"b": batch_sizes, "s": steps}).dropna().sort_values("b").head(doublings + 1)
    if len(frame) < 2:
        return math.nan
    return float(np.polyfit(np.log2(frame["b"]), np.log2(frame["s"]), 1)[0])


def fit_parameters(best: pd.DataFrame, tolerance: float) -> dict[str, float]:
    """Both fits of one (workload, optimizer) from its best trials: every name in PARAMETERS."""
    s_min, b_crit = fit_scaling(best["batch_size"], best["steps_to_result"])
    b, s = _reached_points(best["batch_size"], best["steps_to_result"])
    piecewise = fit_piecewise(b, s)
    boundaries = (math.nan, math.nan)
    if np.isfinite(piecewise).all():
        end, useful = piecewise_boundaries(*piecewise, tolerance)
        seen_line = (b <= piecewise[2] * (1 + 1e-9)).sum() >= 2
        seen_plateau = (b >= piecewise[3] * (1 - 1e-9)).sum() >= 2
        boundaries = (end if seen_line else 0.0, useful if seen_plateau else math.inf)
    return dict(zip(PARAMETERS, (s_min, b_crit, *piecewise, tolerance * b_crit, b_crit / tolerance, *boundaries)))


def bootstrap_trials(trials: pd.DataFrame, n_bootstrap: int, rng: np.random.Generator) -> pd.DataFrame:
    """n_bootstrap resamples of the trials, each study's trials drawn with replacement; column `sample`."""
    positions, samples = [], []
    studies = list(trials.groupby("batch_size").indices.values())
    for sample in range(n_bootstrap):
        for rows in studies:
            positions.append(rows[rng.integers(0, len(rows), len(rows))])
            samples.append(np.full(len(rows), sample))
    if not positions:
        return trials.iloc[:0].assign(sample=pd.Series(dtype=int))
    return trials.iloc[np.concatenate(positions)].assign(sample=np.concatenate(samples))


def constraint(lo: float, hi: float, measured_min: float, measured_max: float) -> str:
    """What the data say about a batch-size boundary with bootstrap interval [lo, hi]."""
    if np.isnan(lo) or np.isnan(hi):
        return "unconstrained"
    # A boundary at the first or last measured batch size cannot be told from one beyond it.
    below, above = lo <= measured_min, hi >= measured_max
    if below and above:
        return "unconstrained"
    if above:
        return "lower bound only"
    if below:
        return "upper bound only"
    return "constrained"


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """Bootstrap quantiles; boundaries beyond the data (0 or inf) take part, failed fits (NaN) do not."""
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    return float(np.quantile(values, alpha, method="lower")), float(np.quantile(values, 1 - alpha, method="higher"))


def fit_workloads(
    trials: pd.DataFrame, n_bootstrap: int = 200, confidence: float = 0.9, tolerance: float = 0.1, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fits per (workload, optimizer) with intervals and what the data constrain; and the bootstrap samples."""
    rng = np.random.default_rng(seed)
    alpha = (1 - confidence) / 2
    rows, bootstrap = [], []
    for key, group in trials.groupby(FIT_KEYS, sort=True):
        best = best_trials(group)
        fit = fit_parameters(best, tolerance)
        drawn = bootstrap_trials(group, n_bootstrap, rng)
        resampled = best_trials(drawn, by=("sample",))
        exact = best_is_exact(drawn, resampled, by=("sample",)).groupby(resampled["sample"]).all()
        samples = pd.DataFrame(
            [
                {"sample": sample, **fit_parameters(b, tolerance)}
                for sample, b in resampled.groupby("sample", sort=True)
            ],
            columns=["sample", *PARAMETERS],
        )
        if not exact.all():  # no band from resamples whose best trials are not known
            samples[PARAMETERS] = math.nan
        bootstrap.append(samples.assign(**dict(zip(FIT_KEYS, key))))
        row = {**dict(zip(FIT_KEYS, key))}
        for name in PARAMETERS:
            row[name] = fit[name]
            row[f"{name}_lo"], row[f"{name}_hi"] = _interval(samples[name].to_numpy(float), alpha)
        measured = best["batch_size"][np.isfinite(best["steps_to_result"])]
        b_min, b_max = (float(measured.min()), float(measured.max())) if len(measured) else (math.nan, math.nan)
        for name in ("b_crit", *BOUNDARIES):
            row[f"{name}_constraint"] = constraint(row[f"{name}_lo"], row[f"{name}_hi"], b_min, b_max)
        # A level is measured where its regime lies within the data, else extrapolated.
        row["s_min_constraint"] = "constrained" if row["b_max_useful_hi"] <= b_max else "extrapolated"
        row["piecewise_s_plateau_constraint"] = (
            "constrained" if row["piecewise_b_max_useful_hi"] <= b_max else "extrapolated"
        )
        if len(measured) < MIN_BATCH_SIZES:
            # Two parameters through two points fit exactly whatever the curve: nothing is tested.
            for name in ("b_crit", *BOUNDARIES, "s_min", "piecewise_s_plateau"):
                row[f"{name}_constraint"] = "unconstrained"
        row["bootstrap_exact_fraction"] = float(exact.mean()) if len(exact) else 1.0
        if not exact.all():  # the point fits are exact; intervals from bounds would not be
            for name in PARAMETERS:
                row[f"{name}_lo"] = row[f"{name}_hi"] = math.nan
            for name in ("b_crit", *BOUNDARIES, "s_min", "piecewise_s_plateau"):
                row[f"{name}_constraint"] = NEEDS_COMPLETE_TRIALS
        row.update(
            # Kept for readers of earlier fits.csv: B_crit's interval lies inside the measured batch sizes.
            b_crit_constrained=row["b_crit_constraint"] == "constrained",
            log2_slope_small_batch=_log2_slope(best["batch_size"], best["steps_to_result"]),
            n_batch_sizes=int(len(measured)),
            measured_b_min=b_min,
            measured_b_max=b_max,
            n_bootstrap=n_bootstrap,
            confidence=confidence,
            tolerance=tolerance,
        )
        rows.append(row)
    columns = [*FIT_KEYS, "sample", *PARAMETERS]
    bootstrap = pd.concat(bootstrap, ignore_index=True)[columns] if bootstrap else pd.DataFrame(columns=columns)
    return pd.DataFrame(rows), bootstrap
