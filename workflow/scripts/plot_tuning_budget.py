import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)
import pandas as pd

from batch_science.analysis import figures
from batch_science.joblog import log_to

log_to(snakemake.log[0])
figures.tuning_budget_figure(pd.read_csv(snakemake.input.table), snakemake.output.png)
