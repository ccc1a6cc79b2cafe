"""A study config checked once, before any job runs: the config's own rules (config.py), then
what needs the package's registries (model names, the NQM's initial loss, Keras models built once).

The pipeline (rules/common.smk), the benchmark and the tools all load a config through here;
every error is one ConfigError line naming the key. Models are built from their knobs, datasets
looked up by name (no network; sizes once prepared, data/checks.py).
"""

from __future__ import annotations

from pathlib import Path

from batch_science.config import DATASET_SOURCES, ConfigError, is_nqm, read_config, validate_config
from batch_science.data.checks import check_dataset
from batch_science.data.tfds_access import dataset_builder
from batch_science.models.registry import MODELS, get_model
from batch_science.training.nqm import quadratic_from_config
from batch_science.trials import TRAINED_METRICS


def check_study(config: dict) -> dict:
    """A validated copy of `config` (defaults filled in); ConfigError naming the first bad key."""
    config = validate_config(config)
    check_own_datasets(config)
    check_keras_models(config)
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
        elif "keras" not in workload["model"] and workload["model"]["name"] not in MODELS:
            known = ", ".join(sorted(MODELS))
            raise ConfigError(
                f"config key {key}.model.name: unknown model '{workload['model']['name']}' (known: {known})"
            )
        else:
            try:
                get_model(workload["model"], config.get("config_dir"))
            except (ValueError, TypeError) as error:
                raise ConfigError(f"config key {key}.model: {' '.join(str(error).split())}") from None
            if "imported_from" not in config:  # a release's study is never trained: its data is not needed
                check_dataset(
                    workload["dataset"], config["data_dir"], key, workload["batch_sizes"], config.get("config_dir")
                )
    return config


def check_own_datasets(config: dict) -> None:
    """Every dataset block names its data once; a builder module or npz file is opened here: the
    class exists and is a tfds builder, the file has the four arrays."""
    for name, workload in config["workloads"].items():
        spec, key = workload["dataset"], f"config key workloads.{name}.dataset"
        given = [source for source in DATASET_SOURCES if source in spec]
        if len(given) != 1:
            raise ConfigError(f"{key}: give one of {', '.join(DATASET_SOURCES)} (got {', '.join(given) or 'none'})")
        if given[0] == "name":
            continue
        try:
            dataset_builder(spec, config["data_dir"], config.get("config_dir"))
        except ValueError as error:
            raise ConfigError(f"{key}.{given[0]}: {' '.join(str(error).split())}") from None


def check_keras_models(config: dict) -> None:
    """Every model block names one model; a Keras one is built once here: its module and function
    exist, it returns a keras.Model, and that maps the dataset's inputs to one logit per class."""
    from batch_science.data.load import declared_input  # pandas and more: only for Keras models

    for name, workload in config["workloads"].items():
        spec, key = workload.get("model", {}), f"config key workloads.{name}.model"
        if is_nqm(workload):
            continue
        if ("name" in spec) == ("keras" in spec):
            raise ConfigError(f"{key}: give name (a registered model) or keras (package.module:function), one of them")
        if "keras" not in spec:
            continue
        try:
            model = get_model(spec, config.get("config_dir"))
            declared = declared_input(workload["dataset"], config["data_dir"], config.get("config_dir"))
            if declared:
                model.check_output(*declared)
        except ValueError as error:
            raise ConfigError(f"{key}.keras: {error}") from None


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """A config file, checked (check_study), with `overrides` set over its top-level keys; Keras
    modules are looked up in the file's folder unless the config names its own config_dir."""
    config = read_config(path, overrides)
    config.setdefault("config_dir", str(Path(path).resolve().parent))
    return check_study(config)
