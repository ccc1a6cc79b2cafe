"""Aggregate a study's shards into its trial, curve and steps-to-result tables."""

from __future__ import annotations

import pandas as pd

from batch_science.analysis.steps import best_trials, with_interpolated_steps
from batch_science.config import config_hash
from batch_science.io import read_parquet_metadata, write_csv, write_parquet
from batch_science.tables import CURVE_KEYS, provenance


def config_hash_of(trials: pd.DataFrame) -> str:
    """The config hash of a study's trials (one config per results folder)."""
    hashes = sorted(trials["config_hash"].dropna().unique()) if "config_hash" in trials else []
    if len(hashes) > 1:
        raise ValueError(f"trials of {len(hashes)} configs mixed: config_hash {', '.join(hashes)}")
    return hashes[0] if hashes else "not recorded"


def check_fingerprints(shard_files, fingerprints) -> None:
    """Refuse, in one line naming them, shards whose trials were made with another config than the
    one given (tuning.search.shard_fingerprint of each shard, in the same order); imported shards
    are their release's results."""
    stale = []
    for path, expected in zip(shard_files, fingerprints, strict=True):
        meta = read_parquet_metadata(path)
        if "imported_by" in meta:  # a release's result (python -m batch_science.release): never tuned here
            continue
        made_with = meta.get("shard_fingerprint", "none")
        if made_with != expected:
            stale.append(
                f"{path} (config hash {meta.get('config_hash', '?')}, fingerprint {made_with}, expected {expected})"
            )
    if stale:
        raise ValueError(
            f"aggregate: {len(stale)} shard tables were made with another config than this one: {'; '.join(stale)}; "
            "delete them and rerun to retrain them (finished trials of this config are kept)"
        )


def aggregate_study(
    trial_files, curve_files, trials: str, curves: str, steps: str, fingerprints=None, config=None
) -> None:
    """The study tables from its shards; with `fingerprints` and `config`, only from shards made with
    this config, recorded under its hash."""
    if fingerprints is not None:
        check_fingerprints([*trial_files, *curve_files], [*fingerprints, *fingerprints])
    trial_table = pd.concat([pd.read_parquet(f) for f in trial_files], ignore_index=True)
    curve_table = pd.concat([pd.read_parquet(f) for f in curve_files], ignore_index=True)
    trial_table = trial_table.sort_values(CURVE_KEYS, ignore_index=True)
    curve_table = curve_table.sort_values([*CURVE_KEYS, "step"], ignore_index=True)
    if config is None:
        metadata = read_parquet_metadata(trial_files[0])
    else:  # shards this config would compute alike, some made before an edit that left them alone
        metadata = provenance(config)
        trial_table["config_hash"] = config_hash(config)
    write_parquet(trial_table, trials, metadata)
    write_parquet(curve_table, curves, metadata)
    steps_table = with_interpolated_steps(best_trials(trial_table), curve_table)
    write_csv(steps_table.assign(config_hash=config_hash_of(trial_table)), steps)
