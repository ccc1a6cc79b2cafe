import checkout_src  # noqa: F401 (first: this checkout's src/ on sys.path)

from batch_science.config import dataset_block
from batch_science.data.load import prepare
from batch_science.joblog import log_to
from batch_science.tuning.study_config import check_study

log_to(snakemake.log[0])
config = snakemake.config
dataset = dataset_block(config, snakemake.wildcards.dataset)  # a tfds name, builder module or npz file
prepare(dataset, snakemake.params.data_dir, snakemake.params.manual_dir, config.get("config_dir"))
# Split names, training subsets and batch sizes are known now: checked before any training.
check_study(snakemake.config)
