# The report's tables, provenance and plain-text summary, from the output tables only.
# `snakemake --report results/<study>/report.html` (or `make report`) collects them with the figures.


rule report_tables:
    """Readable tables: steps to result, best metaparameters, fits with intervals, tuning budget."""
    input:
        steps=f"{RESULTS}/steps_to_result.csv",
        fits=f"{RESULTS}/fits.csv",
        tuning_budget=f"{RESULTS}/tuning_budget.csv",
    output:
        steps=report(
            f"{REPORT}/steps_to_result.html",
            caption="../workflow/report/tables.rst",
            category="6. Tables",
            labels={"table": "steps to result"},
        ),
        metaparameters=report(
            f"{REPORT}/best_metaparameters.html",
            caption="../workflow/report/tables.rst",
            category="6. Tables",
            labels={"table": "best metaparameters"},
        ),
        fits=report(
            f"{REPORT}/fits.html",
            caption="../workflow/report/tables.rst",
            category="6. Tables",
            labels={"table": "fits"},
        ),
        tuning_budget=report(
            f"{REPORT}/tuning_budget.html",
            caption="../workflow/report/tables.rst",
            category="6. Tables",
            labels={"table": "tuning budget"},
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
        report(f"{REPORT}/provenance.html", caption="../workflow/report/provenance.rst", category="7. Provenance"),
    log:
        f"logs/provenance/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    params:
        benchmarks=analysis_outputs.tune_benchmarks(config),
        repository=workflow.basedir,
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
        html=report(f"{REPORT}/summary.html", caption="../workflow/report/summary.rst", category="0. Summary"),
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
