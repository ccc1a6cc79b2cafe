"""The output contract: one path function gives the rules their patterns and the code a study's file."""

import json

import pytest

from batch_science import tables
from batch_science.config import Study, config_hash


def test_path_patterns_carry_the_rules_wildcards():
    assert (
        tables.shard_table("results/s", "trials")
        == "results/s/trials/{workload}/{optimizer}/b{batch_size}/shard{shard}.parquet"
    )
    assert tables.partial_dir("results/s") == "results/s/partial/{workload}/{optimizer}/b{batch_size}"
    assert tables.tune_benchmark("s") == "benchmarks/tune/s/{workload}/{optimizer}/b{batch_size}/shard{shard}.tsv"


def test_a_studys_paths_fill_the_patterns():
    study = Study("mlp", "nesterov", 64)
    assert tables.shard_table("results/s", "curves", study, 2) == "results/s/curves/mlp/nesterov/b64/shard2.parquet"
    assert tables.tune_log("s", study, 0) == "logs/tune/s/mlp/nesterov/b64/shard0.log"
    assert tables.partial_trial("p", 7).name == "trial_00007.parquet"
    assert tables.trial_checkpoint("p", 7).name == "trial_00007.checkpoint"
    with pytest.raises(ValueError, match="table kind 'steps'"):
        tables.shard_table("results/s", "steps", study, 0)


def test_provenance_names_the_config_and_its_hash(tiny_config):
    meta = tables.provenance(tiny_config)
    assert meta["config_hash"] == config_hash(tiny_config)
    assert json.loads(meta["config"]) == json.loads(json.dumps(tiny_config))
    assert "tensorflow" in json.loads(meta["package_versions"])
