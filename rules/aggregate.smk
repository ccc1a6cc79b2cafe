rule aggregate:
    """Gather every trial; the best trial per study gives its steps to result."""
    input:
        trials=study_tables("trials"),
        curves=study_tables("curves"),
    output:
        **tables.study_tables(RESULTS),
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
