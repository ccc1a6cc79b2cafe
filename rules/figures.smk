# Figures of the study, from the output tables only; each PNG (with a PDF beside it) goes into
# the report with a caption from workflow/report/.


rule figures:
    """Target: every figure of the study."""
    input:
        analysis_outputs.figure_files(config, RESULTS),
        metaparameter_figures(),


rule plot_scaling:
    """Steps to result vs batch size: per workload with fits and regimes, normalised, by optimizer."""
    input:
        steps=f"{RESULTS}/steps_to_result.csv",
        fits=f"{RESULTS}/fits.csv",
        bootstrap=f"{RESULTS}/fit_bootstrap.parquet",
    output:
        steps=report_item(
            f"{FIGURES}/steps_to_result.png",
            "1. Scaling",
            "steps to result",
            caption="../workflow/report/steps_to_result.rst",
        ),
        steps_pdf=pdf_item(f"{FIGURES}/steps_to_result.pdf", "1. Scaling", "steps to result"),
        normalized=report_item(
            f"{FIGURES}/steps_to_result_normalized.png",
            "1. Scaling",
            "steps to result, normalised",
            caption="../workflow/report/steps_to_result_normalized.rst",
        ),
        normalized_pdf=pdf_item(
            f"{FIGURES}/steps_to_result_normalized.pdf", "1. Scaling", "steps to result, normalised"
        ),
        optimizers=report_item(
            f"{FIGURES}/optimizer_comparison.png",
            "2. Comparisons",
            "optimizer comparison",
            caption="../workflow/report/optimizer_comparison.rst",
        ),
        optimizers_pdf=pdf_item(f"{FIGURES}/optimizer_comparison.pdf", "2. Comparisons", "optimizer comparison"),
    log:
        f"logs/plot_scaling/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    params:
        confidence=config["confidence"],
    script:
        "../workflow/scripts/plot_scaling.py"


rule plot_variants:
    """Model or dataset-size variants of a workload, normalised steps to result."""
    input:
        steps=f"{RESULTS}/steps_to_result.csv",
    output:
        png=report_item(
            f"{FIGURES}/{{kind}}_variants.png",
            "2. Comparisons",
            "{kind} variants",
            caption="../workflow/report/variants.rst",
        ),
        pdf=pdf_item(f"{FIGURES}/{{kind}}_variants.pdf", "2. Comparisons", "{kind} variants"),
    log:
        f"logs/plot_variants/{STUDY}/{{kind}}.log",
    wildcard_constraints:
        kind="model|dataset_size",
    conda:
        "../envs/study.yaml"
    params:
        groups=variant_groups_of,
        labels=variant_labels_of,
    script:
        "../workflow/scripts/plot_variants.py"


rule plot_learning_rate:
    """Best learning rate, effective learning rate and momentum vs batch size."""
    input:
        steps=f"{RESULTS}/steps_to_result.csv",
    output:
        png=report_item(
            f"{FIGURES}/learning_rate.png",
            "3. Metaparameters",
            "best learning rate and momentum",
            caption="../workflow/report/learning_rate.rst",
        ),
        pdf=pdf_item(f"{FIGURES}/learning_rate.pdf", "3. Metaparameters", "best learning rate and momentum"),
    log:
        f"logs/plot_learning_rate/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    script:
        "../workflow/scripts/plot_learning_rate.py"


rule plot_metaparameters:
    """Per batch size, the trials in (learning rate, 1 - momentum) space by outcome."""
    input:
        trials=f"{RESULTS}/trials.parquet",
        steps=f"{RESULTS}/steps_to_result.csv",
    output:
        png=report_item(
            f"{FIGURES}/metaparameters/{{workload}}_{{optimizer}}.png",
            "3. Metaparameters",
            "trials by outcome",
            caption="../workflow/report/metaparameters.rst",
            workload="{workload}",
            optimizer="{optimizer}",
            subcategory="Trials by outcome",
        ),
        pdf=pdf_item(
            f"{FIGURES}/metaparameters/{{workload}}_{{optimizer}}.pdf",
            "3. Metaparameters",
            "trials by outcome",
            workload="{workload}",
            optimizer="{optimizer}",
        ),
    log:
        f"logs/plot_metaparameters/{STUDY}/{{workload}}_{{optimizer}}.log",
    conda:
        "../envs/study.yaml"
    script:
        "../workflow/scripts/plot_metaparameters.py"


rule plot_solution_quality:
    """Best validation metric within the step budget vs batch size."""
    input:
        steps=f"{RESULTS}/steps_to_result.csv",
    output:
        png=report_item(
            f"{FIGURES}/solution_quality.png",
            "4. Solution quality",
            "solution quality",
            caption="../workflow/report/solution_quality.rst",
        ),
        pdf=pdf_item(f"{FIGURES}/solution_quality.pdf", "4. Solution quality", "solution quality"),
    log:
        f"logs/plot_solution_quality/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    params:
        stopped_at_target=config["stop_at_target"],
    script:
        "../workflow/scripts/plot_solution_quality.py"


rule tuning_budget:
    """Steps to result from random subsets of k trials per study (k = 2, 4, 8, ... all)."""
    input:
        trials=f"{RESULTS}/trials.parquet",
    output:
        table=data_item(f"{RESULTS}/tuning_budget.csv", "data: tuning_budget.csv"),
    log:
        f"logs/tuning_budget/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    params:
        n_resamples=TUNING_BUDGET_RESAMPLES,
        confidence=config["confidence"],
        seed=config["seed"],
    script:
        "../workflow/scripts/tuning_budget.py"


rule plot_tuning_budget:
    """Robustness of steps to result to the number of trials per study."""
    input:
        table=f"{RESULTS}/tuning_budget.csv",
    output:
        png=report_item(
            f"{FIGURES}/tuning_budget.png",
            "5. Robustness",
            "tuning budget",
            caption="../workflow/report/tuning_budget.rst",
        ),
        pdf=pdf_item(f"{FIGURES}/tuning_budget.pdf", "5. Robustness", "tuning budget"),
    log:
        f"logs/plot_tuning_budget/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    script:
        "../workflow/scripts/plot_tuning_budget.py"


localrules:
    figures,
    plot_scaling,
    plot_variants,
    plot_learning_rate,
    plot_metaparameters,
    plot_solution_quality,
    tuning_budget,
    plot_tuning_budget,
