"""A study config checked once, before any job runs: the config's own rules (config.py), then
what needs the package's registries (model names, the NQM's initial loss).

The pipeline (rules/common.smk), the benchmark and the tools all load a config through here;
every error is one ConfigError line naming the key.
"""

from __future__ import annotations

from pathlib import Path

from batch_science.config import ConfigError, is_nqm, read_config, validate_config
from batch_science.models.registry import MODELS
from batch_science.training.nqm import quadratic_from_config
from batch_science.trials import TRAINED_METRICS


def check_study(config: dict) -> dict:
    """A validated copy of `config` (defaults filled in); ConfigError naming the first bad key."""
    config = validate_config(config)
    for name, workload in config["workloads"].items():
        key = f"workloads.{name}"
        metric = workload.get("target", {}).get("metric", TRAINED_METRICS[0])
        if metric not in TRAINED_METRICS and "imported_from" not in config:
            raise ConfigError(
                f"config key {key}.target.metric: '{metric}' is recorded only by an imported "
                f"release study; a trained one records {', '.join(TRAINED_METRICS)}"
            )
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
    return config


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """A config file, checked (check_study), with `overrides` set over its top-level keys."""
    return check_study(read_config(path, overrides))
