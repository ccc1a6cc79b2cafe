rule noise_scale:
    """One training run per workload measuring B_simple = tr(Sigma) / |G|^2 against training progress."""
    input:
        prepared_dataset,
    output:
        f"{RESULTS}/noise_scale/{{workload}}.csv",
    log:
        f"logs/noise_scale/{STUDY}/{{workload}}.log",
    benchmark:
        f"benchmarks/noise_scale/{STUDY}/{{workload}}.tsv"
    conda:
        "../envs/study.yaml"
    threads: 1
    resources:
        gpu=0,
    script:
        "../workflow/scripts/noise_scale.py"


rule noise_scale_table:
    """All noise-scale curves in one table; predicted B_simple beside fitted B_crit per workload and optimizer."""
    input:
        runs=noise_scale_runs(),
        fits=f"{RESULTS}/fits.csv",
    output:
        curves=f"{RESULTS}/noise_scale.csv",
        comparison=f"{RESULTS}/noise_scale_vs_b_crit.csv",
        summary=f"{RESULTS}/noise_scale_summary.md",
    log:
        f"logs/noise_scale_table/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    script:
        "../workflow/scripts/noise_scale_table.py"


rule plot_noise_scale:
    """B_simple vs training progress with the fitted B_crit bands; prediction vs measurement."""
    input:
        curves=f"{RESULTS}/noise_scale.csv",
        comparison=f"{RESULTS}/noise_scale_vs_b_crit.csv",
    output:
        png=report_item(
            f"{FIGURES}/noise_scale.png",
            "8. Gradient noise scale",
            "gradient noise scale",
            caption="../workflow/report/noise_scale.rst",
        ),
        pdf=pdf_item(f"{FIGURES}/noise_scale.pdf", "8. Gradient noise scale", "gradient noise scale"),
    log:
        f"logs/plot_noise_scale/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    script:
        "../workflow/scripts/noise_scale_plot.py"


localrules:
    noise_scale_table,
    plot_noise_scale,
