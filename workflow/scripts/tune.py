from batch_science.config import Study, validate_config
from batch_science.joblog import log_to
from batch_science.tune import run_tune_job

log_to(snakemake.log[0])
w = snakemake.wildcards
run_tune_job(
    validate_config(snakemake.config),
    Study(w.workload, w.optimizer, int(w.batch_size)),
    int(w.shard),
    trials_out=snakemake.output.trials,
    curves_out=snakemake.output.curves,
    partial_dir=snakemake.params.partial_dir,
    threads=snakemake.threads,
)
