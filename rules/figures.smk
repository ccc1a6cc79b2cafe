rule figures:
    """Target: every figure of the study."""
    input:
        f"{RESULTS}/figures/steps_to_result.png",
        f"{RESULTS}/figures/learning_rate.png",
        metaparameter_figures(),


rule plot_scaling:
    """Steps to result and best learning rates vs batch size."""
    input:
        steps=f"{RESULTS}/steps_to_result.csv",
        fits=f"{RESULTS}/fits.csv",
        bootstrap=f"{RESULTS}/fit_bootstrap.parquet",
    output:
        steps=f"{RESULTS}/figures/steps_to_result.png",
        steps_pdf=f"{RESULTS}/figures/steps_to_result.pdf",
        learning_rate=f"{RESULTS}/figures/learning_rate.png",
        learning_rate_pdf=f"{RESULTS}/figures/learning_rate.pdf",
    log:
        f"logs/plot_scaling/{config['study']}.log",
    params:
        confidence=config["confidence"],
    conda:
        "../envs/study.yaml"
    script:
        "../workflow/scripts/plot_scaling.py"


rule plot_metaparameters:
    """Per batch size, the trials in (learning rate, 1 - momentum) space by outcome."""
    input:
        trials=f"{RESULTS}/trials.parquet",
        steps=f"{RESULTS}/steps_to_result.csv",
    output:
        png=f"{RESULTS}/figures/metaparameters/{{workload}}_{{optimizer}}.png",
        pdf=f"{RESULTS}/figures/metaparameters/{{workload}}_{{optimizer}}.pdf",
    log:
        f"logs/plot_metaparameters/{config['study']}/{{workload}}_{{optimizer}}.log",
    conda:
        "../envs/study.yaml"
    script:
        "../workflow/scripts/plot_metaparameters.py"


localrules:
    figures,
    aggregate,
    fit,
    plot_scaling,
    plot_metaparameters,
