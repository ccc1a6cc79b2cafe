import checkout_src  # first: this checkout's src/ on sys.path

from batch_science.analysis.report import write_provenance
from batch_science.joblog import log_to

log_to(snakemake.log[0])
write_provenance(snakemake.input.trials, snakemake.params.benchmarks, snakemake.output[0], checkout_src.CHECKOUT)
