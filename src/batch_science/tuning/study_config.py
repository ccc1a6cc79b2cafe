"""A study config checked once, before any job runs: the config's own rules (config.py), then
what needs the package's registries (model names, the NQM's initial loss).

The pipeline (rules/common.smk), the benchmark and the tools all load a config through here;
every error is one ConfigError line naming the key. Models are built from their knobs, datasets
looked up by name (no network; sizes once prepared, data/checks.py).
"""

from __future__ import annotations

from pathlib import Path

from batch_science.config import ConfigError, is_nqm, read_config, validate_config
from batch_science.data.checks import check_dataset
from batch_science.models.registry import MODELS, get_model
from batch_science.training.nqm import quadratic_from_config


def check_study(config: dict) -> dict:
    """A validated copy of `config` (defaults filled in); ConfigError naming the first bad key."""
    config = validate_config(config)
    for name, workload in config["workloads"].items():
        key = f"workloads.{name}"
        if is_nqm(workload):
            target_loss = workload["nqm"]["target_loss"]
            initial_loss = quadratic_from_config(workload["nqm"]).initial_loss
            if target_loss >= initial_loss:
                raise ConfigError(
                    f"config key {key}.nqm.target_loss: {target_loss} is not below the initial loss {initial_loss:.4g}"
                )
        elif workload["model"]["name"] not in MODELS:
            known = ", ".join(sorted(MODELS))
            raise ConfigError(
                f"config key {key}.model.name: unknown model '{workload['model']['name']}' (known: {known})"
            )
        else:
            try:
                get_model(workload["model"])
            except (ValueError, TypeError) as error:
                raise ConfigError(f"config key {key}.model: {' '.join(str(error).split())}") from None
            check_dataset(workload["dataset"], config["data_dir"], key, workload["batch_sizes"])
    return config


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """A config file, checked (check_study), with `overrides` set over its top-level keys."""
    return check_study(read_config(path, overrides))
