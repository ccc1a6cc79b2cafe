import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)
import pandas as pd

from batch_science.analysis.robustness import tuning_budget_table
from batch_science.io import write_csv
from batch_science.joblog import log_to

log_to(snakemake.log[0])
write_csv(tuning_budget_table(pd.read_parquet(snakemake.input.trials), **snakemake.params), snakemake.output.table)
