"""Aggregate a study's shards into its trial, curve and steps-to-result tables."""

from __future__ import annotations

import pandas as pd

from batch_science.analysis.steps import best_trials, with_interpolated_steps
from batch_science.io import read_parquet_metadata, write_csv, write_parquet
from batch_science.tables import CURVE_KEYS


def aggregate_study(trial_files, curve_files, trials: str, curves: str, steps: str) -> None:
    trial_table = pd.concat([pd.read_parquet(f) for f in trial_files], ignore_index=True)
    curve_table = pd.concat([pd.read_parquet(f) for f in curve_files], ignore_index=True)
    trial_table = trial_table.sort_values(CURVE_KEYS, ignore_index=True)
    curve_table = curve_table.sort_values([*CURVE_KEYS, "step"], ignore_index=True)
    metadata = read_parquet_metadata(trial_files[0])
    write_parquet(trial_table, trials, metadata)
    write_parquet(curve_table, curves, metadata)
    write_csv(with_interpolated_steps(best_trials(trial_table), curve_table), steps)
