import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)
import pandas as pd

from batch_science.analysis.aggregate import config_hash_of
from batch_science.analysis.fit import fit_workloads
from batch_science.io import read_parquet_metadata, write_csv, write_parquet
from batch_science.joblog import log_to

log_to(snakemake.log[0])
trials = pd.read_parquet(snakemake.input.trials)
fits, bootstrap = fit_workloads(trials, **snakemake.params)
write_csv(fits.assign(config_hash=config_hash_of(trials)), snakemake.output.fits)
write_parquet(bootstrap, snakemake.output.bootstrap, read_parquet_metadata(snakemake.input.trials))
