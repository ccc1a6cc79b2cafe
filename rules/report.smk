# The report's tables, provenance and plain-text summary, from the output tables only.
# `snakemake --report results/<study>/report.html` (or `make report`) collects them with the figures.


rule report_tables:
    """Readable tables: steps to result, best metaparameters, fits with intervals, tuning budget."""
    input:
        steps=f"{RESULTS}/steps_to_result.csv",
        fits=f"{RESULTS}/fits.csv",
        tuning_budget=f"{RESULTS}/tuning_budget.csv",
    output:
        steps=report_item(
            f"{REPORT}/steps_to_result.html",
            "6. Tables",
            "table: steps to result",
            caption="../workflow/report/tables.rst",
            subcategory="Readable tables",
        ),
        metaparameters=report_item(
            f"{REPORT}/best_metaparameters.html",
            "6. Tables",
            "table: best metaparameters",
            caption="../workflow/report/tables.rst",
            subcategory="Readable tables",
        ),
        fits=report_item(
            f"{REPORT}/fits.html",
            "6. Tables",
            "table: fits",
            caption="../workflow/report/tables.rst",
            subcategory="Readable tables",
        ),
        tuning_budget=report_item(
            f"{REPORT}/tuning_budget.html",
            "6. Tables",
            "table: tuning budget",
            caption="../workflow/report/tables.rst",
            subcategory="Readable tables",
        ),
    log:
        f"logs/report_tables/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    params:
        confidence=config["confidence"],
    script:
        "../workflow/scripts/report_tables.py"


rule provenance:
    """Config and its hash, package versions, git revision, machine and run times of the study."""
    input:
        trials=f"{RESULTS}/trials.parquet",
    output:
        report_item(
            f"{REPORT}/provenance.html",
            "7. Provenance",
            "provenance",
            caption="../workflow/report/provenance.rst",
            subcategory="Provenance",
        ),
    log:
        f"logs/provenance/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    params:
        benchmarks=analysis_outputs.tune_benchmarks(config),
    script:
        "../workflow/scripts/provenance.py"


rule summary:
    """The findings in a few sentences with numbers: results/<study>/summary.md."""
    input:
        steps=f"{RESULTS}/steps_to_result.csv",
        fits=f"{RESULTS}/fits.csv",
        tuning_budget=f"{RESULTS}/tuning_budget.csv",
    output:
        markdown=f"{RESULTS}/summary.md",
        html=report_item(
            f"{REPORT}/summary.html",
            "0. Summary",
            "summary",
            caption="../workflow/report/summary.rst",
            subcategory="Summary",
        ),
    log:
        f"logs/summary/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    params:
        study=config["study"],
        confidence=config["confidence"],
        stopped_at_target=config["stop_at_target"],
    script:
        "../workflow/scripts/summary.py"


localrules:
    report_tables,
    provenance,
    summary,
