"""Aggregate a study's shards into its trial, curve and steps-to-result tables."""

from __future__ import annotations

import pandas as pd

from batch_science.analysis.steps import best_trials, with_interpolated_steps
from batch_science.io import read_parquet_metadata, write_csv, write_parquet
from batch_science.tables import CURVE_KEYS


def config_hash_of(trials: pd.DataFrame) -> str:
    """The config hash of a study's trials (one config per results folder)."""
    hashes = sorted(trials["config_hash"].dropna().unique()) if "config_hash" in trials else []
    if len(hashes) > 1:
        raise ValueError(f"trials of {len(hashes)} configs mixed: config_hash {', '.join(hashes)}")
    return hashes[0] if hashes else "not recorded"


def aggregate_study(trial_files, curve_files, trials: str, curves: str, steps: str) -> None:
    trial_table = pd.concat([pd.read_parquet(f) for f in trial_files], ignore_index=True)
    curve_table = pd.concat([pd.read_parquet(f) for f in curve_files], ignore_index=True)
    trial_table = trial_table.sort_values(CURVE_KEYS, ignore_index=True)
    curve_table = curve_table.sort_values([*CURVE_KEYS, "step"], ignore_index=True)
    metadata = read_parquet_metadata(trial_files[0])
    write_parquet(trial_table, trials, metadata)
    write_parquet(curve_table, curves, metadata)
    steps_table = with_interpolated_steps(best_trials(trial_table), curve_table)
    write_csv(steps_table.assign(config_hash=config_hash_of(trial_table)), steps)
