"""Provenance recorded with every result table: config hash, seed, package versions."""
from __future__ import annotations

import json
from importlib import metadata

from batch_science.config import config_hash

PACKAGES = ("batch-science", "tensorflow", "tensorflow-datasets", "numpy", "scipy", "pandas", "snakemake", "mnist1d")


def package_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def provenance(config: dict) -> dict[str, str]:
    return {
        "config_hash": config_hash(config),
        "seed": str(config["seed"]),
        "precision": config["precision"],
        "package_versions": json.dumps(package_versions(), sort_keys=True),
        "config": json.dumps(config, sort_keys=True),
    }
