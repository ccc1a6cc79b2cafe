import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)
import pandas as pd

from batch_science.analysis.report import write_report_tables
from batch_science.joblog import log_to

log_to(snakemake.log[0])
write_report_tables(
    pd.read_csv(snakemake.input.steps),
    pd.read_csv(snakemake.input.fits),
    pd.read_csv(snakemake.input.tuning_budget),
    dict(snakemake.output.items()),
    snakemake.params.confidence,
)
