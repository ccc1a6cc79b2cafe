# Effects of data parallelism on training (Shallue et al. 2019): steps to result per batch size.
# This file is a table of contents; rules/ orchestrate, the science is in src/batch_science.
import sys

from snakemake.utils import min_version

min_version("9.0")

# The checkout's own package first, also where only its dependencies are installed (envs/study.yaml).
sys.path.insert(0, f"{workflow.basedir}/src")


# The default study, unless --configfile names another (Snakemake would merge the two);
# --config key=value applies on top of either.
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/tune.smk"
include: "rules/aggregate.smk"
include: "rules/fit.smk"
include: "rules/figures.smk"
include: "rules/report.smk"
include: "rules/noise_scale.smk"


rule all:
    default_target: True
    input:
        rules.figures.input,
        analysis_outputs.report_files(RESULTS),
        fits=f"{RESULTS}/fits.csv",
        noise_scale=noise_scale_outputs(),
        # Named, so that a shard or study table that is missing (or removed as unreadable) is
        # rebuilt by a plain rerun: Snakemake does not otherwise remake a missing intermediate.
        tables=tables.study_tables(RESULTS).values(),
        shards=study_tables("trials") + study_tables("curves"),
