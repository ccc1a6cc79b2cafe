# Config validation (once, before any job), the study grid, and the input and resource functions
# shared by the rules. Paths of the tables come from the package's output contract (tables.py).
import os
import sys

from batch_science import tables
from batch_science.analysis import outputs as analysis_outputs
from batch_science.analysis.variants import variant_groups
from batch_science.config import ConfigError, Study, data_parallel_for, is_nqm, shard_count, studies, workload_setting
from batch_science.io import remove_unreadable
from batch_science.trials import OPTIMIZERS
from batch_science.tuning.search import shard_fingerprint
from batch_science.tuning.study_config import check_study

try:
    # One line naming the bad key, before any job runs (Snakemake's own message is a page).
    config.update(check_study(config))
except ConfigError as error:
    sys.exit(f"Config error: {error}")

STUDY = config["study"]
RESULTS = tables.results_dir(STUDY)
FIGURES = f"{RESULTS}/figures"
REPORT = f"{RESULTS}/report"
STUDIES = studies(config)
VARIANTS = variant_groups(config["workloads"])
TUNING_BUDGET_RESAMPLES = 100


wildcard_constraints:
    workload=r"[A-Za-z0-9_-]+",
    optimizer="|".join(OPTIMIZERS),
    batch_size=r"\d+",
    shard=r"\d+",
    dataset=r"[A-Za-z0-9_.-]+",


def study_shards():
    """(study, shard) of every tune job, in the order of study_tables."""
    return [(study, shard) for study in STUDIES for shard in range(shard_count(config, study.workload))]


def study_tables(kind):
    """Every shard's trial or curve table of every study."""
    return [tables.shard_table(RESULTS, kind, study, shard) for study, shard in study_shards()]


# A table cut short (a full disk, a killed copy) is no result: removed, a plain rerun rebuilds it,
# the tune jobs from the finished trials they kept. Tables of another config are aggregate's to refuse.
for path, why in remove_unreadable(
    [*study_tables("trials"), *study_tables("curves"), *tables.study_tables(RESULTS).values()]
):
    print(f"{path}: unreadable ({why}); removed, so this run rebuilds it", file=sys.stderr)


# What each tune job's trials depend on (tuning.search.shard_fingerprint), computed once.
SHARD_FINGERPRINTS = {(study, shard): shard_fingerprint(config, study, shard) for study, shard in study_shards()}


def tune_fingerprint(wildcards):
    """A tune job's shard fingerprint: Snakemake's params trigger reruns the job, and what follows
    it, when an edit of the config changes it."""
    study = Study(wildcards.workload, wildcards.optimizer, int(wildcards.batch_size))
    return SHARD_FINGERPRINTS[(study, int(wildcards.shard))]


def shard_fingerprints():
    """Every tune job's fingerprint, in the order of study_tables: aggregate refuses a shard without it."""
    return list(SHARD_FINGERPRINTS.values())


def prepared_dataset(wildcards):
    workload = config["workloads"][wildcards.workload]
    if is_nqm(workload):  # the noisy quadratic model has no data to prepare
        return []
    return f"{config['data_dir']}/{workload['dataset']['name']}.prepared"


def folder_of_output(wildcards, output):
    return os.path.dirname(output[0])


def metaparameter_figures():
    return [
        f"{FIGURES}/metaparameters/{name}_{optimizer}.png"
        for name, workload in config["workloads"].items()
        for optimizer in workload["optimizers"]
    ]


def noise_scale_workloads():
    """Workloads whose noise scale is measured: noise_scale.enabled, the workload's own over the study's."""
    return [name for name in config["workloads"] if workload_setting(config, name, "noise_scale")["enabled"]]


def noise_scale_outputs():
    """The noise-scale figure and summary, if any workload's noise scale is measured."""
    if not noise_scale_workloads():
        return []
    return [f"{FIGURES}/noise_scale.png", f"{RESULTS}/noise_scale_summary.md"]


def noise_scale_runs():
    """One noise-scale run per measured workload."""
    return [f"{RESULTS}/noise_scale/{name}.csv" for name in noise_scale_workloads()]


def variant_groups_of(wildcards):
    return VARIANTS[wildcards.kind]


def variant_labels_of(wildcards):
    return analysis_outputs.variant_labels(config, wildcards.kind)


def tune_data_parallel(wildcards):
    """The config's data_parallel block if this tune job's study trains data-parallel, else None."""
    return data_parallel_for(config, Study(wildcards.workload, wildcards.optimizer, int(wildcards.batch_size)))


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


def tune_runtime(wildcards, attempt):
    """Minutes, doubled on each retry: a job stopped at its time limit comes back with more."""
    return 120 * 2 ** (attempt - 1)
