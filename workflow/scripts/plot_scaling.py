import pandas as pd

from batch_science.analysis import figures
from batch_science.joblog import log_to

log_to(snakemake.log[0])
steps = pd.read_csv(snakemake.input.steps)
fits = pd.read_csv(snakemake.input.fits)
figures.steps_to_result_figure(steps, fits, pd.read_parquet(snakemake.input.bootstrap), snakemake.output.steps, snakemake.params.confidence)
figures.learning_rate_figure(steps, snakemake.output.learning_rate)
