import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)

from batch_science.data.load import prepare
from batch_science.joblog import log_to

log_to(snakemake.log[0])
prepare(snakemake.wildcards.dataset, snakemake.params.data_dir, snakemake.params.manual_dir)
