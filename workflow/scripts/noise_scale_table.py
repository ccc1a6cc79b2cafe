import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)
import pandas as pd

from batch_science.analysis.noise_scale import compare_with_fits, summary
from batch_science.io import atomic_write, write_csv
from batch_science.joblog import log_to

log_to(snakemake.log[0])
curves = pd.concat([pd.read_csv(path) for path in snakemake.input.runs], ignore_index=True)
comparison = compare_with_fits(curves, pd.read_csv(snakemake.input.fits), snakemake.config)
write_csv(curves, snakemake.output.curves)
write_csv(comparison, snakemake.output.comparison)
text = summary(comparison)
atomic_write(snakemake.output.summary, lambda tmp: open(tmp, "w").write(text))
