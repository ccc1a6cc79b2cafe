# Effects of data parallelism on training (Shallue et al. 2019): steps to result per batch size.
# This file is a table of contents; rules/ orchestrate, the science is in src/batch_science.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/tune.smk"
include: "rules/aggregate.smk"
include: "rules/fit.smk"
include: "rules/figures.smk"
include: "rules/noise_scale.smk"


rule all:
    default_target: True
    input:
        rules.figures.input,
        fits=f"{RESULTS}/fits.csv",
        noise_scale=rules.plot_noise_scale.output.png,
        noise_scale_summary=rules.noise_scale_table.output.summary,
