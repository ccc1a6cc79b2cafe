"""The gradient noise scale's prediction beside the measured critical batch size (tables only).

training/noise_scale.py measures B_simple along one run per workload; this compares it with the
B_crit fitted to the steps to result (analysis/fit.py), in a table and a few sentences.
"""

from __future__ import annotations

import math

import pandas as pd

from batch_science.trials import Target


def at_target(curve: pd.DataFrame, target: dict) -> dict:
    """B_simple where the run first meets the workload's target (else at its end), and its median."""
    goal = Target(**target)
    hits = curve[goal.met(curve[goal.column].to_numpy(float))]
    row = hits.iloc[0] if len(hits) else curve.iloc[-1]
    return {
        "b_simple": float(row["b_simple"]),
        "b_simple_step": int(row["step"]),
        "b_simple_reached_target": bool(len(hits)),
        "b_simple_median": float(curve["b_simple"].median()),
        # The steps to the target are spent at every noise scale on the way, not only at the end.
        "b_simple_mean_to_target": float(curve.loc[curve["step"] <= row["step"], "b_simple"].mean()),
        "b_noise": float(row["b_noise"]) if "b_noise" in row else math.nan,
    }


def compare_with_fits(curves: pd.DataFrame, fits: pd.DataFrame, config: dict) -> pd.DataFrame:
    """One row per workload and optimizer: predicted B_simple beside fitted B_crit and its interval."""
    rows = []
    for _, fit in fits.iterrows():
        curve = curves[curves["workload"] == fit["workload"]]
        prediction = at_target(curve, config["workloads"][fit["workload"]]["target"]) if len(curve) else {}
        b_simple = prediction.get("b_simple", math.nan)
        rows.append(
            {
                "workload": fit["workload"],
                "optimizer": fit["optimizer"],
                **prediction,
                "b_crit": fit["b_crit"],
                "b_crit_lo": fit["b_crit_lo"],
                "b_crit_hi": fit["b_crit_hi"],
                "b_crit_constrained": fit["b_crit_constrained"],
                "b_simple_over_b_crit": b_simple / fit["b_crit"] if fit["b_crit"] > 0 else math.nan,
                "b_simple_in_interval": bool(fit["b_crit_lo"] <= b_simple <= fit["b_crit_hi"]),
            }
        )
    return pd.DataFrame(rows)


def summary(comparison: pd.DataFrame) -> str:
    """One sentence per workload and optimizer: how far the prediction was from the measurement."""
    lines = ["# Gradient noise scale vs measured critical batch size", ""]
    for _, row in comparison.iterrows():
        ratio = row["b_simple_over_b_crit"]
        where = "at the target" if row.get("b_simple_reached_target") else "at the end of the run (target not reached)"
        constrained = "" if row["b_crit_constrained"] else " (B_crit not pinned down by the measured batch sizes)"
        lines.append(
            f"- {row['workload']}, {row['optimizer']}: predicted B_simple = {row['b_simple']:.3g} {where}, "
            f"fitted B_crit = {row['b_crit']:.3g} [{row['b_crit_lo']:.3g}, {row['b_crit_hi']:.3g}]{constrained}; "
            f"the prediction is {ratio:.2g}x the measurement ({abs(math.log2(ratio)) if ratio > 0 else math.nan:.1f} "
            "doublings away)."
        )
    return "\n".join(lines) + "\n"
