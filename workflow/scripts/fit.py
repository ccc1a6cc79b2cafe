import pandas as pd

from batch_science.analysis.fit import fit_workloads
from batch_science.io import write_csv, write_parquet
from batch_science.joblog import log_to

log_to(snakemake.log[0])
fits, bootstrap = fit_workloads(pd.read_parquet(snakemake.input.trials), **snakemake.params)
write_csv(fits, snakemake.output.fits)
write_parquet(bootstrap, snakemake.output.bootstrap)
