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
        steps=report(
            f"{FIGURES}/steps_to_result.png", caption="../workflow/report/steps_to_result.rst", category="1. Scaling"
        ),
        steps_pdf=f"{FIGURES}/steps_to_result.pdf",
        normalized=report(
            f"{FIGURES}/steps_to_result_normalized.png",
            caption="../workflow/report/steps_to_result_normalized.rst",
            category="1. Scaling",
        ),
        normalized_pdf=f"{FIGURES}/steps_to_result_normalized.pdf",
        optimizers=report(
            f"{FIGURES}/optimizer_comparison.png",
            caption="../workflow/report/optimizer_comparison.rst",
            category="2. Comparisons",
        ),
        optimizers_pdf=f"{FIGURES}/optimizer_comparison.pdf",
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
        png=report(
            f"{FIGURES}/{{kind}}_variants.png",
            caption="../workflow/report/variants.rst",
            category="2. Comparisons",
            labels={"figure": "{kind} variants"},
        ),
        pdf=f"{FIGURES}/{{kind}}_variants.pdf",
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
        png=report(
            f"{FIGURES}/learning_rate.png",
            caption="../workflow/report/learning_rate.rst",
            category="3. Metaparameters",
        ),
        pdf=f"{FIGURES}/learning_rate.pdf",
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
        png=report(
            f"{FIGURES}/metaparameters/{{workload}}_{{optimizer}}.png",
            caption="../workflow/report/metaparameters.rst",
            category="3. Metaparameters",
            subcategory="Trials by outcome",
            labels={"workload": "{workload}", "optimizer": "{optimizer}"},
        ),
        pdf=f"{FIGURES}/metaparameters/{{workload}}_{{optimizer}}.pdf",
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
        png=report(
            f"{FIGURES}/solution_quality.png",
            caption="../workflow/report/solution_quality.rst",
            category="4. Solution quality",
        ),
        pdf=f"{FIGURES}/solution_quality.pdf",
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
        table=f"{RESULTS}/tuning_budget.csv",
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
        png=report(
            f"{FIGURES}/tuning_budget.png", caption="../workflow/report/tuning_budget.rst", category="5. Robustness"
        ),
        pdf=f"{FIGURES}/tuning_budget.pdf",
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
