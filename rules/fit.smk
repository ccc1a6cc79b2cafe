rule fit:
    """Fit S(B) = S_min (1 + B_crit / B) per workload and optimizer, with parametric bootstrap intervals (docs/fit.md)."""
    input:
        trials=f"{RESULTS}/trials.parquet",
    output:
        fits=data_item(f"{RESULTS}/fits.csv", "data: fits.csv"),
        bootstrap=data_item(f"{RESULTS}/fit_bootstrap.parquet", "data: fit_bootstrap.parquet"),
    log:
        f"logs/fit/{STUDY}.log",
    conda:
        "../envs/study.yaml"
    params:
        n_bootstrap=config["bootstrap"],
        confidence=config["confidence"],
        tolerance=config["scaling_tolerance"],
        seed=config["seed"],
    script:
        "../workflow/scripts/fit.py"


localrules:
    fit,
