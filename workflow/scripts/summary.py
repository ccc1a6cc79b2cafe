import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)
import pandas as pd

from batch_science.analysis.summary import write_summary
from batch_science.joblog import log_to

log_to(snakemake.log[0])
write_summary(
    pd.read_csv(snakemake.input.steps),
    pd.read_csv(snakemake.input.fits),
    pd.read_csv(snakemake.input.tuning_budget),
    snakemake.output.markdown,
    snakemake.output.html,
    **snakemake.params,
)
