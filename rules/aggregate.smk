rule aggregate:
    """Gather every trial; the best trial per study gives its steps to result."""
    input:
        trials=study_tables("trials"),
        curves=study_tables("curves"),
    output:
        trials=data_item(f"{RESULTS}/trials.parquet", "data: trials.parquet"),
        curves=data_item(f"{RESULTS}/curves.parquet", "data: curves.parquet"),
        steps=data_item(f"{RESULTS}/steps_to_result.csv", "data: steps_to_result.csv"),
    log:
        f"logs/aggregate/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    params:
        # What each shard's trials depend on: a shard made with another config is refused.
        fingerprints=shard_fingerprints(),
    script:
        "../workflow/scripts/aggregate.py"


localrules:
    aggregate,
