# Config validation (once, before any job), the study grid, and the input and resource functions
# shared by the rules. Paths of the tables come from the package's output contract (tables.py).
import os
import sys

from batch_science import tables
from batch_science.analysis import outputs as analysis_outputs
from batch_science.analysis.variants import variant_groups
from batch_science.config import (
    ConfigError,
    Study,
    data_parallel_for,
    dataset_name,
    is_nqm,
    shard_count,
    studies,
    workload_setting,
)
from batch_science.io import remove_unreadable
from batch_science.trials import OPTIMIZERS
from batch_science.tuning.search import shard_fingerprint
from batch_science.tuning.study_config import check_study

# Keras model modules are imported from the folder of the (first) config file: recorded in the
# config, so every job, also one SLURM starts on another node, looks there.
config.setdefault(
    "config_dir", os.path.dirname(os.path.abspath(workflow.configfiles[0])) if workflow.configfiles else os.getcwd()
)
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


def report_item(path, category, figure, caption=None, workload="all", optimizer="all", subcategory="Figures"):
    """An output shown in the report, labelled by what it shows: figure kind, workload, optimizer."""
    labels = {"figure": figure, "workload": workload, "optimizer": optimizer}
    return report(path, caption=caption, category=category, subcategory=subcategory, labels=labels)


def pdf_item(path, category, figure, **labels):
    """A figure's PDF (vector, fonts embedded), downloadable from the report beside its PNG."""
    return report_item(path, category, f"{figure} (PDF)", subcategory="PDFs", **labels)


def data_item(path, figure):
    """A result table, downloadable from the report."""
    return report_item(path, "6. Tables", figure, caption="../workflow/report/data_files.rst", subcategory="Data files")


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
    return f"{config['data_dir']}/{dataset_name(workload['dataset'])}.prepared"


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


# The tune jobs of studies trained data-parallel (rule tune_data_parallel). Data parallelism depends
# only on the batch size and the workload (never NQM), so these two sets pick exactly those jobs.
DATA_PARALLEL_STUDIES = [study for study in STUDIES if data_parallel_for(config, study)]
DATA_PARALLEL_WORKLOADS = sorted({study.workload for study in DATA_PARALLEL_STUDIES})
DATA_PARALLEL_BATCH_SIZES = sorted({study.batch_size for study in DATA_PARALLEL_STUDIES})


def data_parallel_gpus(wildcards):
    """GPUs of a data-parallel tune job (sbatch --gpus): every device, on one node; across nodes the
    GPUs are asked per node instead (data_parallel_gres)."""
    spec = config["data_parallel"]
    return spec["devices"] if spec["nodes"] == 1 else 0


def data_parallel_gres(wildcards):
    """Across nodes: each node's GPUs (sbatch --gres=gpu:N, counted per node); else nothing."""
    spec = config["data_parallel"]
    return f"gpu:{spec['devices']}" if spec["nodes"] > 1 else ""


def tune_runtime(wildcards, attempt):
    """Minutes, doubled on each retry: a job stopped at its time limit comes back with more."""
    return 120 * 2 ** (attempt - 1)
