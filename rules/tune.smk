rule tune:
    """Train one shard of a study's trials (in compiled graphs, or data-parallel one at a time) and write its tables."""
    input:
        prepared_dataset,
    output:
        trials=tables.shard_table(RESULTS, "trials"),
        curves=tables.shard_table(RESULTS, "curves"),
    log:
        tables.tune_log(STUDY),
    benchmark:
        tables.tune_benchmark(STUDY)
    conda:
        "../envs/study.yaml"
    # CPUs per GPU (sbatch --cpus-per-gpu, TensorFlow's threads): `set-threads: tune` in the profile.
    threads: 1
    resources:
        # Portable needs; a cluster's partition, account, GPU model and limits are in slurm/config.yaml.
        gpu=1,
        cpus_per_gpu=lambda wildcards, threads: threads,
        runtime=tune_runtime,
        mem_mb=4000,
    params:
        # Finished trials are kept here, outside the outputs, so a killed job loses none.
        partial_dir=tables.partial_dir(RESULTS),
        # What the shard's trials depend on (not runtime settings): an edit that changes it reruns the job.
        fingerprint=tune_fingerprint,
    script:
        "../workflow/scripts/tune.py"


if DATA_PARALLEL_BATCH_SIZES:

    # The tune jobs of the studies trained data-parallel (config data_parallel): a rule of their own,
    # because they ask for more GPUs (and nodes), and a SLURM job array asks its first job's resources
    # for every task (docs/cluster.md).
    use rule tune as tune_data_parallel with:
        wildcard_constraints:
            workload="|".join(DATA_PARALLEL_WORKLOADS),
            batch_size="|".join(map(str, DATA_PARALLEL_BATCH_SIZES)),
        resources:
            gpu=data_parallel_gpus,
            gres=data_parallel_gres,
            nodes=config["data_parallel"]["nodes"],
            tasks=config["data_parallel"]["nodes"],
            tasks_per_gpu=0,
            cpus_per_gpu=lambda wildcards, threads: threads,
            runtime=tune_runtime,
            mem_mb=4000,

    ruleorder: tune_data_parallel > tune
