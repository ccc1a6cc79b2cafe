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


def noise_scale_workloads():
    """Workloads whose noise scale is measured: all, unless the config or the workload turns it off."""
    if not config["noise_scale"]["enabled"]:
        return []
    return [w for w, spec in config["workloads"].items() if spec.get("noise_scale", {}).get("enabled", True)]


def noise_scale_outputs():
    """The noise-scale figure and summary, if any workload's noise scale is measured."""
    if not noise_scale_workloads():
        return []
    return [f"{RESULTS}/figures/noise_scale.png", f"{RESULTS}/noise_scale_summary.md"]


def noise_scale_runs():
    """One noise-scale run per measured workload."""
    return [f"{RESULTS}/noise_scale/{w}.csv" for w in noise_scale_workloads()]


def tune_data_parallel(wildcards):
    """The config's data_parallel block if this tune job's study trains data-parallel, else None."""
    study = study_config.Study(wildcards.workload, wildcards.optimizer, int(wildcards.batch_size))
    return study_config.data_parallel_for(config, study)


def tune_gpus(wildcards):
    """GPUs of a tune job (sbatch --gpus): one, or every device of a single-node data-parallel study.

    Across nodes the GPUs are asked per node instead (tune_gres)."""
    spec = tune_data_parallel(wildcards)
    if spec is None:
        return 1
    return spec["devices"] if spec["nodes"] == 1 else 0


def tune_gres(wildcards):
    """Across nodes: each node's GPUs (sbatch --gres=gpu:N, counted per node); else nothing."""
    spec = tune_data_parallel(wildcards)
    return f"gpu:{spec['devices']}" if spec and spec["nodes"] > 1 else ""


def tune_nodes(wildcards):
    """Nodes of a tune job (sbatch --nodes; one task per node, SLURM's default)."""
    spec = tune_data_parallel(wildcards)
    return spec["nodes"] if spec else 1
