import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)

from batch_science.config import Study
from batch_science.joblog import log_to
from batch_science.tuning.launcher import launch_tune_job

log_to(snakemake.log[0])
w = snakemake.wildcards
launch_tune_job(
    config=snakemake.config,
    study=Study(w.workload, w.optimizer, int(w.batch_size)),
    shard=int(w.shard),
    trials_out=snakemake.output.trials,
    curves_out=snakemake.output.curves,
    partial_dir=snakemake.params.partial_dir,
    threads=snakemake.threads,
)
