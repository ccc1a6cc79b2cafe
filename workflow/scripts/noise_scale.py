import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)

from batch_science.io import write_csv
from batch_science.joblog import log_to
from batch_science.training.noise_scale import measure

log_to(snakemake.log[0])
curve = measure(snakemake.config, snakemake.wildcards.workload, threads=snakemake.threads)
write_csv(curve, snakemake.output[0])
