from batch_science.data.load import prepare
from batch_science.joblog import log_to
from batch_science.tuning.study_config import check_study

log_to(snakemake.log[0])
prepare(snakemake.wildcards.dataset, snakemake.params.data_dir, snakemake.params.manual_dir)
# Split names, training subsets and batch sizes are known now: checked before any training.
check_study(snakemake.config)
