import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)

from batch_science.analysis.aggregate import aggregate_study
from batch_science.joblog import log_to

log_to(snakemake.log[0])
aggregate_study(
    snakemake.input.trials,
    snakemake.input.curves,
    **snakemake.output,
    fingerprints=snakemake.params.fingerprints,
    config=snakemake.config,
)
