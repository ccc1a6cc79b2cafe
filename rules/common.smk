# Config validation, the study grid, and input functions shared by the rules.
import os
import sys

from snakemake.utils import validate

from batch_science import config as study_config

try:
    # One line naming the bad key, before any job runs (Snakemake's own message is a page).
    config.update(study_config.validate_config(config))
except study_config.ConfigError as error:
    sys.exit(f"Config error: {error}")
validate(config, "../workflow/schemas/config.schema.yaml")

RESULTS = f"results/{config['study']}"
STUDIES = study_config.studies(config)
DATASETS = sorted({w["dataset"]["name"] for w in config["workloads"].values()})


wildcard_constraints:
    workload=r"[A-Za-z0-9_-]+",
    optimizer=r"sgd|momentum|nesterov",
    batch_size=r"\d+",
    shard=r"\d+",
    dataset=r"[A-Za-z0-9_.-]+",


def study_tables(kind):
    """Every shard's trial or curve table of every study."""
    return [
        f"{RESULTS}/{kind}/{s.workload}/{s.optimizer}/b{s.batch_size}/shard{shard}.parquet"
        for s in STUDIES
        for shard in range(study_config.shard_count(config, s.workload))
    ]


def prepared_dataset(wildcards):
    name = config["workloads"][wildcards.workload]["dataset"]["name"]
    if name == "nqm":  # the noisy quadratic model has no data to prepare
        return []
    return f"{config['data_dir']}/{name}.prepared"


def folder_of_output(wildcards, output):
    return os.path.dirname(output[0])


def metaparameter_figures():
    return [
        f"{RESULTS}/figures/metaparameters/{w}_{o}.png"
        for w, workload in config["workloads"].items()
        for o in workload["optimizers"]
    ]


def noise_scale_outputs():
    """The noise-scale figure and summary, unless the config turns the measurement off."""
    if not config["noise_scale"]["enabled"]:
        return []
    return [f"{RESULTS}/figures/noise_scale.png", f"{RESULTS}/noise_scale_summary.md"]


def noise_scale_runs():
    """One noise-scale run per workload."""
    return [f"{RESULTS}/noise_scale/{w}.csv" for w in config["workloads"]]
