rule aggregate:
    """Gather every trial; the best trial per study gives its steps to result."""
    input:
        trials=study_tables("trials"),
        curves=study_tables("curves"),
    output:
        trials=f"{RESULTS}/trials.parquet",
        curves=f"{RESULTS}/curves.parquet",
        steps=f"{RESULTS}/steps_to_result.csv",
    log:
        f"logs/aggregate/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    script:
        "../workflow/scripts/aggregate.py"


localrules:
    aggregate,
