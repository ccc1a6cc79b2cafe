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
    threads: 1
    resources:
        # Portable needs; a cluster's partition, account, GPU model and limits are in slurm/config.yaml.
        # One GPU; a data-parallel study (config data_parallel) asks for all its devices and nodes.
        gpu=tune_gpus,
        gres=tune_gres,
        nodes=tune_nodes,
        runtime=tune_runtime,
        mem_mb=4000,
    params:
        # Finished trials are kept here, outside the outputs, so a killed job loses none.
        partial_dir=tables.partial_dir(RESULTS),
        # What the shard's trials depend on (not runtime settings): an edit that changes it reruns the job.
        fingerprint=tune_fingerprint,
    script:
        "../workflow/scripts/tune.py"
