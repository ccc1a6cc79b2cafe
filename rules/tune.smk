rule tune:
    """Train one shard of a study's trials (in compiled graphs, or data-parallel one at a time) and write its tables."""
    input:
        prepared_dataset,
    output:
        trials=f"{RESULTS}/trials/{{workload}}/{{optimizer}}/b{{batch_size}}/shard{{shard}}.parquet",
        curves=f"{RESULTS}/curves/{{workload}}/{{optimizer}}/b{{batch_size}}/shard{{shard}}.parquet",
    log:
        f"logs/tune/{config['study']}/{{workload}}/{{optimizer}}/b{{batch_size}}/shard{{shard}}.log",
    benchmark:
        f"benchmarks/tune/{config['study']}/{{workload}}/{{optimizer}}/b{{batch_size}}/shard{{shard}}.tsv"
    params:
        # Finished trials are kept here, outside the outputs, so a killed job loses none.
        partial_dir=f"{RESULTS}/partial/{{workload}}/{{optimizer}}/b{{batch_size}}",
    threads: 1
    resources:
        # Portable needs; a cluster's partition, account, GPU model and limits are in slurm/config.yaml.
        # One GPU; a data-parallel study (config data_parallel) asks for all its devices and nodes.
        gpu=tune_gpus,
        gres=tune_gres,
        nodes=tune_nodes,
        # Minutes, doubled on each retry: a job stopped at its time limit comes back with more.
        runtime=lambda wildcards, attempt: 120 * 2 ** (attempt - 1),
        mem_mb=4000,
    conda:
        "../envs/study.yaml"
    script:
        "../workflow/scripts/tune.py"
