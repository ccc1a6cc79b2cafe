rule tune:
    """Train one shard of a study's trials (all in compiled graphs) and write its tables."""
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
        gpu=0,
    conda:
        "../envs/study.yaml"
    script:
        "../workflow/scripts/tune.py"
