from batch_science.config import Study, data_parallel_for, validate_config
from batch_science.distributed import run_across_nodes
from batch_science.joblog import log_to
from batch_science.tune import run_tune_job

log_to(snakemake.log[0])
w = snakemake.wildcards
job = dict(
    config=validate_config(snakemake.config),
    study=Study(w.workload, w.optimizer, int(w.batch_size)),
    shard=int(w.shard),
    trials_out=snakemake.output.trials,
    curves_out=snakemake.output.curves,
    partial_dir=snakemake.params.partial_dir,
    threads=snakemake.threads,
)
parallel = data_parallel_for(job["config"], job["study"])
if parallel and parallel["nodes"] > 1:  # one worker per node, started by srun (docs/cluster.md)
    run_across_nodes(parallel["nodes"], **job)
else:
    run_tune_job(**job)
