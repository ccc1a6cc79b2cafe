import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)
import pandas as pd

from batch_science.analysis import figures
from batch_science.joblog import log_to

log_to(snakemake.log[0])
steps = pd.read_csv(snakemake.input.steps)
fits = pd.read_csv(snakemake.input.fits)
bootstrap = pd.read_parquet(snakemake.input.bootstrap)
figures.steps_to_result_figure(steps, fits, bootstrap, snakemake.output.steps, snakemake.params.confidence)
figures.normalized_steps_figure(steps, snakemake.output.normalized)
figures.optimizer_comparison_figure(steps, fits, snakemake.output.optimizers)
