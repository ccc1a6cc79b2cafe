import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)
import pandas as pd

from batch_science.analysis.figures import noise_scale_figure
from batch_science.joblog import log_to

log_to(snakemake.log[0])
noise_scale_figure(pd.read_csv(snakemake.input.curves), pd.read_csv(snakemake.input.comparison), snakemake.output.png)
