import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)
import pandas as pd

from batch_science.analysis import figures
from batch_science.joblog import log_to

log_to(snakemake.log[0])
w = snakemake.wildcards
figures.metaparameter_figure(
    pd.read_parquet(snakemake.input.trials),
    pd.read_csv(snakemake.input.steps),
    w.workload,
    w.optimizer,
    snakemake.output.png,
)
