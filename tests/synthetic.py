"""Synthetic trial and curve tables with a known scaling curve (no training).

Every trial's steps to result scatter log-normally above the true curve, so the best trial of
a study approaches it as trials are added. Columns follow the trials.parquet contract.
"""

import numpy as np
import pandas as pd

from batch_science.analysis.fit import scaling_curve

BATCH_SIZES = 2 ** np.arange(3, 13)


def synthetic_trials(
    n_trials,
    s_min=50.0,
    b_crit=200.0,
    noise=0.15,
    seed=0,
    *,
    steps=None,
    batch_sizes=BATCH_SIZES,
    workload="w",
    optimizer="sgd",
    eval_every=1,
    infeasible_fraction=0.0,
    target_value=0.2,
):
    """`steps(batch_size)` gives the true curve (default S_min (1 + B_crit / B)); the measured
    steps are the first evaluation (every `eval_every` steps) at or past the trial's crossing."""
    rng = np.random.default_rng(seed)
    steps = steps or (lambda b: scaling_curve(b, s_min, b_crit))
    rows = []
    for b in batch_sizes:
        budget = int(np.ceil(4 * steps(b) / eval_every) * eval_every)
        for i in range(n_trials):
            crossing = steps(b) * np.exp(abs(rng.normal(0, noise)))
            momentum = 0.0 if optimizer == "sgd" else float(1 - 10 ** rng.uniform(-2, -0.3))
            learning_rate = float(0.05 * np.sqrt(b / batch_sizes[0]) * np.exp(rng.normal(0, 0.3)))
            status = (
                "infeasible"
                if rng.random() < infeasible_fraction
                else "reached"
                if crossing <= budget
                else "not_reached"
            )
            measured = float(np.ceil(crossing / eval_every) * eval_every) if status == "reached" else np.nan
            final = int(measured) if status == "reached" else budget
            rows.append(
                {
                    "workload": workload,
                    "dataset": "synthetic",
                    "model": "none",
                    "optimizer": optimizer,
                    "batch_size": int(b),
                    "trial_id": i,
                    "learning_rate": learning_rate,
                    "momentum": momentum,
                    "decay_steps": budget,
                    "end_factor": 1.0,
                    "label_smoothing": 0.0,
                    "seed": 0,
                    "step_budget": budget,
                    "eval_every": eval_every,
                    "effective_learning_rate": learning_rate / (1 - momentum),
                    "status": status,
                    "steps_to_result": measured,
                    "crossing": float(crossing),
                    "best_val_metric": target_value * 0.99
                    if status == "reached"
                    else np.nan
                    if status == "infeasible"
                    else target_value * 1.2,
                    "best_step": final,
                    "final_step": final,
                    "target_metric": "error",
                    "target_value": target_value,
                    "target_direction": "minimize",
                    "config_hash": "synthetic",
                }
            )
    return pd.DataFrame(rows)


def synthetic_curves(trials):
    """Validation error falling linearly from 0.9 to cross the target exactly at each trial's crossing."""
    frames = []
    for _, t in trials.iterrows():
        step = np.arange(0, t["final_step"] + 1, t["eval_every"], dtype=float)
        error = np.maximum(0.9 - (0.9 - t["target_value"]) * step / t["crossing"], 0.01)
        if t["status"] == "infeasible":
            error[len(error) // 2 :] = np.nan
        frames.append(
            pd.DataFrame(
                {
                    "workload": t["workload"],
                    "optimizer": t["optimizer"],
                    "batch_size": t["batch_size"],
                    "trial_id": t["trial_id"],
                    "step": step.astype(int),
                    "train_cross_entropy": 2 * error,
                    "val_cross_entropy": 2 * error,
                    "val_error": error,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
