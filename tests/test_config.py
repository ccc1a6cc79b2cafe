"""A bad config stops with one line naming the key, before any job runs."""

import copy
import re

import pytest
import yaml

from batch_science.config import ConfigError, shard_count, shard_trials, steps_for, studies
from batch_science.tuning.study_config import check_study, load_config
from conftest import REPO, TINY_CONFIG, run_snakemake


def tiny_raw():
    return yaml.safe_load(TINY_CONFIG.read_text())


def broken(edit):
    config = copy.deepcopy(tiny_raw())
    edit(config)
    return config


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c["workloads"]["mnist1d_mlp"]["optimizers"].append("adamw"), "workloads.mnist1d_mlp.optimizers.2"),
        (
            lambda c: c["workloads"]["mnist1d_mlp"]["batch_sizes"].__setitem__(0, -8),
            "workloads.mnist1d_mlp.batch_sizes.0",
        ),
        (lambda c: c["workloads"]["mnist1d_mlp"].pop("target"), "workloads.mnist1d_mlp"),
        (lambda c: c["workloads"]["mnist1d_mlp"]["target"].pop("value"), "workloads.mnist1d_mlp.target"),
        (lambda c: c["search_spaces"]["nesterov"].pop("momentum"), "search_spaces.nesterov.momentum"),
        (lambda c: c["search_spaces"].pop("sgd"), "workloads.mnist1d_mlp.optimizers"),
        (
            lambda c: c["workloads"]["mnist1d_mlp"]["model"].__setitem__("name", "resnet9000"),
            "workloads.mnist1d_mlp.model.name",
        ),
        (
            lambda c: c["workloads"]["mnist1d_mlp"].__setitem__("step_budget", {"32": 10}),
            "workloads.mnist1d_mlp.step_budget",
        ),
        (
            lambda c: c["search_spaces"]["sgd"].__setitem__("learning_rate", {"min": 1, "max": 0.1, "scale": "log"}),
            "search_spaces.sgd.learning_rate",
        ),
        (lambda c: c.__setitem__("trials", 0), "trials"),
        (lambda c: c.__setitem__("typo_key", 1), "<top level>"),
        (lambda c: c.__setitem__("data_parallel", {"min_batch_size": 256, "devices": 3}), "data_parallel"),
        (lambda c: c.__setitem__("data_parallel", {"min_batch_size": 64, "devices": 0}), "data_parallel.devices"),
    ],
)
def test_bad_config_names_the_key_in_one_line(edit, key):
    with pytest.raises(ConfigError) as error:
        check_study(broken(edit))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"config key {key}:"), message


def test_missing_target_is_named():
    with pytest.raises(ConfigError, match="'target' is a required property"):
        check_study(broken(lambda c: c["workloads"]["mnist1d_mlp"].pop("target")))


def test_defaults_are_filled(tiny_config):
    assert tiny_config["precision"] == "float32"
    assert tiny_config["stop_at_target"] is True
    assert tiny_config["workloads"]["mnist1d_mlp"]["target"]["direction"] == "minimize"


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope.yaml: not found"):
        load_config(tmp_path / "nope.yaml")


def test_every_shipped_config_is_valid():
    for path in sorted((REPO / "config").glob("*.yaml")):
        assert studies(load_config(path)), path


def test_steps_for_resolves_every_form():
    assert steps_for(100, 32) == 100
    assert steps_for({"16": 7, "32": 9}, 32) == 9
    assert steps_for({"examples": 1000, "min_steps": 10}, 32) == 32
    assert steps_for({"examples": 1000, "min_steps": 40}, 32) == 40
    assert steps_for({"examples": 1000, "max_steps": 20}, 8) == 20


def test_shards_cover_every_trial_once(tiny_config):
    config = dict(tiny_config, trials=7, trials_per_job=3)
    ids = [i for shard in range(3) for i in shard_trials(config, shard, "mnist1d_mlp")]
    assert ids == list(range(7))


def test_a_workload_sets_its_own_trial_count_and_shards(tiny_config):
    config = copy.deepcopy(tiny_config)
    config["workloads"]["lstm_like"] = dict(config["workloads"]["mnist1d_mlp"], trials=5, trials_per_job=2)
    config = check_study(config)
    assert (shard_count(config, "mnist1d_mlp"), shard_count(config, "lstm_like")) == (2, 3)
    assert [list(shard_trials(config, shard, "lstm_like")) for shard in range(3)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ConfigError, match="config key workloads.lstm_like.trials: 0 is less than the minimum of 1"):
        check_study(broken(lambda c: c["workloads"].update(lstm_like=dict(c["workloads"]["mnist1d_mlp"], trials=0))))


def test_dry_run_has_a_tune_job_per_shard_of_each_workloads_own_trials(tmp_path):
    config = broken(lambda c: c["workloads"]["mnist1d_mlp"].update(trials=5, trials_per_job=2))
    path = tmp_path / "own_trials.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "-n", "--quiet", "rules", "--configfile", str(path))
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M))
    assert (
        int(counts["tune"]) == 2 * 2 * 3
    )  # optimizers x batch sizes x shards of 2, 2 and 1 trials (the study's own 4 / 2 would give 2)


def test_snakemake_stops_before_any_job_with_one_line(tmp_path):
    bad = broken(lambda c: c["workloads"]["mnist1d_mlp"]["optimizers"].append("adamw"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = run_snakemake(tmp_path, "-n", "--configfile", str(path), check=False)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "Config error" in line]
    assert lines == [
        "Config error: config key workloads.mnist1d_mlp.optimizers.2: 'adamw' is not one of ['sgd', 'momentum', "
        "'nesterov', 'adam']"
    ]
    assert not (tmp_path / "results").exists()


ADAM_SPACE = {
    "learning_rate": {"min": 1e-4, "max": 1e-2, "scale": "log"},
    "beta1": {"min": 0.5, "max": 0.99, "scale": "reverse_log"},
    "beta2": 0.999,
    "epsilon": {"min": 1e-9, "max": 1e-6, "scale": "log"},
}


def with_adam(edit=lambda c: None):
    def change(config):
        config["search_spaces"]["adam"] = copy.deepcopy(ADAM_SPACE)
        config["workloads"]["mnist1d_mlp"]["optimizers"].append("adam")
        edit(config)

    return change


@pytest.mark.parametrize(
    "edit, key, says",
    [
        (with_adam(lambda c: c["search_spaces"]["adam"].pop("beta1")), "search_spaces.adam.beta1", "required"),
        (with_adam(lambda c: c["search_spaces"]["adam"].pop("epsilon")), "search_spaces.adam.epsilon", "required"),
        (
            with_adam(lambda c: c["search_spaces"]["adam"].__setitem__("beta1", {"values": [0.9, 1.0]})),
            "search_spaces.adam.beta1",
            "1 is outside the allowed [0, 1)",
        ),
        (
            with_adam(lambda c: c["search_spaces"]["adam"].__setitem__("beta2", -0.1)),
            "search_spaces.adam.beta2",
            "-0.1 is outside the allowed [0, 1)",
        ),
        (
            with_adam(lambda c: c["search_spaces"]["adam"].__setitem__("epsilon", {"min": 0.0, "max": 1e-8})),
            "search_spaces.adam.epsilon",
            "0 is outside the allowed (0, inf)",
        ),
        (
            with_adam(lambda c: c.__setitem__("noise_scale", {"optimizer": "adam", "beta1": 0.9, "beta2": 0.99})),
            "noise_scale.epsilon",
            "required for noise_scale.optimizer 'adam'",
        ),
        (
            with_adam(lambda c: c.__setitem__("noise_scale", {"optimizer": "adam", "beta1": 1.0})),
            "noise_scale.beta1",
            "1.0 is greater than or equal to the maximum of 1",
        ),
    ],
)
def test_bad_adam_config_names_the_key_in_one_line(edit, key, says):
    with pytest.raises(ConfigError) as error:
        check_study(broken(edit))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"config key {key}: ") and says in message, message


def test_adam_config_is_valid_at_the_ends_of_its_ranges():
    config = check_study(broken(with_adam(lambda c: c["search_spaces"]["adam"].__setitem__("beta1", 0.0))))
    assert config["search_spaces"]["adam"]["beta1"] == 0.0  # beta1 = 0 is allowed (no first-moment averaging)
    check_study(broken(with_adam(lambda c: c["search_spaces"]["adam"].__setitem__("epsilon", 1e-300))))


@pytest.mark.parametrize("profile", [[], ["--profile", str(REPO / "slurm")]], ids=["plain", "slurm profile"])
@pytest.mark.parametrize(
    "nodes, large_batch_resources", [(1, ("gpu=2", "gres=", "nodes=1")), (2, ("gpu=0", "gres=gpu:2", "nodes=2"))]
)
def test_tune_jobs_ask_for_the_devices_and_nodes_of_data_parallel_studies(
    tmp_path, nodes, large_batch_resources, profile
):
    """Batch size 256 over 2 GPUs (sbatch --gpus=2), or over 2 nodes x 2 GPUs (--nodes=2 --gres=gpu:2,
    counted per node), in rule tune_data_parallel; batch size 32 keeps its one GPU (rule tune). The
    SLURM profile must not cut them (a global `resources: gpu` cap would)."""
    path = tmp_path / "data_parallel.yaml"
    path.write_text(yaml.safe_dump({"data_parallel": {"min_batch_size": 256, "devices": 2, "nodes": nodes}}))
    result = run_snakemake(tmp_path, "-n", *profile, "--configfile", str(TINY_CONFIG), str(path))
    resources = {}
    for rule, job in re.findall(r"^rule (tune|tune_data_parallel):\n(.*?)(?=^\S|\Z)", result.stdout, re.M | re.S):
        batch_size = int(job.split("batch_size=")[1].split(",")[0])
        line = job.split("resources: ")[1].splitlines()[0]
        resources.setdefault((rule, batch_size), set()).add(
            tuple(r for r in line.split(", ") if r.split("=")[0] in ("gpu", "gres", "nodes"))
        )
    assert resources == {("tune", 32): {("gpu=1",)}, ("tune_data_parallel", 256): {large_batch_resources}}


def test_config_hash_follows_what_is_computed_not_how_the_run_is_carried_out(tiny_config):
    from batch_science.config import config_hash

    assert config_hash(dict(tiny_config, checkpoint_minutes=0.5)) == config_hash(
        dict(tiny_config, checkpoint_minutes=10)
    )
    assert config_hash(dict(tiny_config, seed=1)) != config_hash(dict(tiny_config, seed=2))


def test_a_workloads_own_settings_are_merged_over_the_studys(tiny_config):
    from batch_science.config import search_space, workload_setting

    config = copy.deepcopy(tiny_config)
    name = next(iter(config["workloads"]))
    workload = config["workloads"][name]
    workload.update(trials=7, noise_scale={"learning_rate": 0.5}, search_space={"label_smoothing": 0.1})
    assert workload_setting(config, name, "trials") == 7
    assert workload_setting(config, name, "trials_per_job") == config["trials_per_job"]  # not set: the study's
    noise = workload_setting(config, name, "noise_scale")
    assert noise["learning_rate"] == 0.5 and noise["steps"] == config["noise_scale"]["steps"]
    space = search_space(config, name, "sgd")
    assert space["label_smoothing"] == 0.1 and space["learning_rate"] == config["search_spaces"]["sgd"]["learning_rate"]
    assert shard_count(config, name) == -(-7 // config["trials_per_job"])
