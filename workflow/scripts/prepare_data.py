from batch_science import data
from batch_science.joblog import log_to

log_to(snakemake.log[0])
data.prepare(snakemake.wildcards.dataset, snakemake.params.data_dir, snakemake.params.manual_dir)
