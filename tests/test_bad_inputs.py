"""The bad-input table: settings that cannot describe a study, bad files and command lines.

Each is refused in one line that names the key and what is allowed, before any job runs (the
data-dependent ones: once the dataset is prepared, before any training), and nothing is written.
Most go through check_study, the pipeline's one validation (rules/common.smk exits 1 with its
line); a representative handful through real Snakemake runs, for the exit code and the files.
"""

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from batch_science.config import ConfigError
from batch_science.tuning.study_config import check_study, load_config
from conftest import TINY_CONFIG, run_snakemake

W = "workloads.mnist1d_mlp"


def tiny_raw():
    return yaml.safe_load(TINY_CONFIG.read_text())


def workload(c):
    return c["workloads"]["mnist1d_mlp"]


def space(c, optimizer):
    return c["search_spaces"][optimizer]


# (id, edit of the tiny config, key the line names, words the line says)
BAD_CONFIGS = [
    ("momentum range above 1", lambda c: space(c, "nesterov").update(momentum={"min": 0.5, "max": 1.2}),
     "search_spaces.nesterov.momentum", "1.2 is outside the allowed [0, 1)"),
    ("momentum exactly 1", lambda c: space(c, "nesterov").update(momentum=1.0),
     "search_spaces.nesterov.momentum", "1 is outside the allowed [0, 1)"),
    ("momentum list reaching 1", lambda c: space(c, "nesterov").update(momentum={"values": [0.5, 1]}),
     "search_spaces.nesterov.momentum", "1 is outside the allowed [0, 1)"),
    ("momentum below 0", lambda c: space(c, "nesterov").update(momentum={"min": -0.1, "max": 0.9}),
     "search_spaces.nesterov.momentum", "-0.1 is outside the allowed [0, 1)"),
    ("learning rate 0", lambda c: space(c, "sgd").update(learning_rate=0),
     "search_spaces.sgd.learning_rate", "0 is outside the allowed (0, inf)"),
    ("learning rate range below 0", lambda c: space(c, "sgd").update(learning_rate={"min": -1, "max": 1}),
     "search_spaces.sgd.learning_rate", "-1 is outside the allowed (0, inf)"),
    ("learning rate list with a negative", lambda c: space(c, "sgd").update(learning_rate={"values": [0.1, -0.1]}),
     "search_spaces.sgd.learning_rate", "-0.1 is outside"),
    ("end factor 0", lambda c: space(c, "nesterov").update(end_factor=0),
     "search_spaces.nesterov.end_factor", "0 is outside the allowed (0, 1]"),
    ("end factor range below 0", lambda c: space(c, "nesterov").update(end_factor={"min": -0.1, "max": 0.1}),
     "search_spaces.nesterov.end_factor", "-0.1 is outside the allowed (0, 1]"),
    ("end factor above 1", lambda c: space(c, "nesterov").update(end_factor=1.5),
     "search_spaces.nesterov.end_factor", "1.5 is outside the allowed (0, 1]"),
    ("decay fraction 2", lambda c: space(c, "nesterov").update(decay_fraction=2),
     "search_spaces.nesterov.decay_fraction", "2 is outside the allowed (0, 1]"),
    ("decay fraction 0", lambda c: space(c, "nesterov").update(decay_fraction={"min": 0, "max": 1}),
     "search_spaces.nesterov.decay_fraction", "0 is outside the allowed (0, 1]"),
    ("label smoothing 1 in a workload", lambda c: workload(c).update(search_space={"label_smoothing": 1}),
     f"{W}.search_space.label_smoothing", "1 is outside the allowed [0, 1)"),
    ("label smoothing below 0", lambda c: space(c, "sgd").update(label_smoothing={"values": [0, -0.1]}),
     "search_spaces.sgd.label_smoothing", "-0.1 is outside the allowed [0, 1)"),
    ("error target above 1", lambda c: workload(c)["target"].update(value=1.2),
     f"{W}.target.value", "1.2 is outside the range of error, (0, 1)"),
    ("error target 1", lambda c: workload(c)["target"].update(value=1),
     f"{W}.target.value", "1 is outside the range of error, (0, 1)"),
    ("error target 0", lambda c: workload(c)["target"].update(value=0),
     f"{W}.target.value", "0 is outside the range of error, (0, 1)"),
    ("negative error target", lambda c: workload(c)["target"].update(value=-0.1),
     f"{W}.target.value", "-0.1 is outside the range of error"),
    ("cross-entropy target 0", lambda c: workload(c).update(target={"metric": "cross_entropy", "value": 0}),
     f"{W}.target.value", "0 is outside the range of cross_entropy, (0, inf)"),
    ("negative cross-entropy target", lambda c: workload(c).update(target={"metric": "cross_entropy", "value": -1}),
     f"{W}.target.value", "-1 is outside the range of cross_entropy"),
    ("eval_every above the budget", lambda c: workload(c).update(eval_every=201),
     f"{W}.eval_every", "201 steps at batch size 256 is above the step budget of 200"),
    ("example-based eval_every above the budget",
     lambda c: workload(c).update(eval_every={"examples": 10**6, "min_steps": 1}),
     f"{W}.eval_every", "at batch size 32 is above the step budget of 500"),
    ("budget min_steps above max_steps",
     lambda c: workload(c).update(step_budget={"examples": 16000, "min_steps": 300, "max_steps": 100}),
     f"{W}.step_budget.min_steps", "300 is above max_steps 100"),
    ("eval_every min_steps above max_steps",
     lambda c: workload(c).update(eval_every={"examples": 640, "min_steps": 5, "max_steps": 2}),
     f"{W}.eval_every.min_steps", "5 is above max_steps 2"),
    ("model knob typo", lambda c: workload(c)["model"].update(hiden=[64]),
     f"{W}.model", "bad size knob"),
    ("model knob of another model", lambda c: workload(c).update(model={"name": "cnn1d", "hidden": [64]}),
     f"{W}.model", "bad size knob"),
    ("unknown model", lambda c: workload(c)["model"].update(name="resnet9000"),
     f"{W}.model.name", "unknown model 'resnet9000'"),
    ("unknown dataset", lambda c: workload(c)["dataset"].update(name="mnist_typo"),
     f"{W}.dataset.name", "unknown dataset 'mnist_typo'"),
    ("50 classes of 10", lambda c: workload(c)["dataset"].update(classes=50),
     f"{W}.dataset.classes", "50 is above the 10 classes of 'mnist1d'"),
    ("train_fraction above 1", lambda c: workload(c)["dataset"].update(train_fraction=1.5),
     f"{W}.dataset.train_fraction", "1.5 is greater than the maximum of 1"),
    ("study named ..", lambda c: c.update(study=".."), "study", "'..' is not a folder name"),
    ("study named .", lambda c: c.update(study="."), "study", "'.' is not a folder name"),
    ("study with a slash", lambda c: c.update(study="../elsewhere"), "study", "does not match"),
    ("no trials", lambda c: c.update(trials=0), "trials", "0 is less than the minimum of 1"),
    ("unknown optimizer", lambda c: workload(c)["optimizers"].append("rmsprop"), f"{W}.optimizers.2",
     "'rmsprop' is not one of"),
    ("no batch sizes", lambda c: workload(c).update(batch_sizes=[]), f"{W}.batch_sizes", "should be non-empty"),
    ("batch size 0", lambda c: workload(c).update(batch_sizes=[0, 32]), f"{W}.batch_sizes.0", "less than the minimum"),
    ("negative seed", lambda c: c.update(seed=-1), "seed", "less than the minimum of 0"),
    ("divergence factor 1", lambda c: c.update(divergence_factor=1), "divergence_factor", "less than or equal to"),
    ("confidence 1.5", lambda c: c.update(confidence=1.5), "confidence", "greater than or equal to the maximum"),
    ("noise-scale momentum 1", lambda c: c.update(noise_scale={"momentum": 1.0}), "noise_scale.momentum",
     "greater than or equal to the maximum of 1"),
    ("nqm target above its initial loss",
     lambda c: c["workloads"].update(quad={"dataset": {"name": "nqm"}, "nqm": {"dimension": 10, "target_loss": 100},
                                           "step_budget": 100, "batch_sizes": [8], "optimizers": ["sgd"]}),
     "workloads.quad.nqm.target_loss", "is not below the initial loss"),
]  # fmt: skip

# Needs the dataset's splits and sizes: refused once it is prepared (at validation when it already is).
BAD_FOR_THE_DATA = [
    ("10 training examples for batch 32", lambda c: workload(c)["dataset"].update(train_examples=10),
     f"{W}.batch_sizes", "batch size 32 is above the 10 training examples of 'mnist1d'"),
    ("more training examples than the split", lambda c: workload(c)["dataset"].update(train_examples=10**7),
     f"{W}.dataset.train_examples", "exceeds the"),
    ("unknown training split", lambda c: workload(c)["dataset"].update(train_split="trian"),
     f"{W}.dataset.train_split", "no split 'trian' in 'mnist1d' (splits: train, validation"),
    ("unknown validation split", lambda c: workload(c)["dataset"].update(validation_split="test"),
     f"{W}.dataset.validation_split", "no split 'test'"),
    ("batch size above the training set", lambda c: workload(c).update(batch_sizes=[32, 10**6]),
     f"{W}.batch_sizes", "batch size 1000000 is above the"),
]  # fmt: skip


def edited(edit, **top):
    config = copy.deepcopy(tiny_raw())
    edit(config)
    config.update(top)
    return config


def files_under(folder: Path) -> dict:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused_in_one_line(config, key, words):
    with pytest.raises(ConfigError) as error:
        check_study(config)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"config key {key}: "), message
    assert words in message, message


@pytest.mark.parametrize("edit, key, words", [case[1:] for case in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_refused_in_one_line_and_writes_nothing(edit, key, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tiny config's data folder is relative: nothing may appear here
    assert_refused_in_one_line(edited(edit, data_dir=str(tmp_path / "tfds")), key, words)
    assert files_under(tmp_path) == {}


@pytest.mark.parametrize(
    "edit, key, words", [case[1:] for case in BAD_FOR_THE_DATA], ids=[c[0] for c in BAD_FOR_THE_DATA]
)
def test_bad_config_for_a_prepared_dataset_is_refused_in_one_line(edit, key, words, prepared_data_dir):
    before = files_under(Path(prepared_data_dir))
    assert_refused_in_one_line(edited(edit, data_dir=prepared_data_dir), key, words)
    assert files_under(Path(prepared_data_dir)) == before
    # Not prepared yet: accepted here, refused by prepare_data (test below), before any training.
    check_study(edited(edit, data_dir=prepared_data_dir + "/not_prepared"))


def test_boundaries_of_the_ranges_are_accepted():
    def edit(c):
        space(c, "nesterov").update(momentum={"values": [0, 0.999]}, end_factor=1, decay_fraction=1)
        workload(c).update(search_space={"label_smoothing": 0}, eval_every=200)  # the budget at batch 256
        workload(c)["target"].update(value=0.999)

    check_study(edited(edit))


@pytest.mark.parametrize(
    "write, words",
    [
        (None, "bad.yaml: not found"),
        ("study: [unclosed", "bad.yaml: not valid YAML"),
    ],
    ids=["missing file", "not YAML"],
)
def test_bad_config_file_is_named(write, words, tmp_path):
    path = tmp_path / "bad.yaml"
    if write is not None:
        path.write_text(write)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "\n" not in str(error.value) and words in str(error.value) and str(error.value).startswith("config file")


# Through real Snakemake: exit code 1, the one line on the console, nothing written or changed.
SNAKEMAKE_CASES = [
    ("momentum 1.2 in a config file", BAD_CONFIGS[0], []),
    ("error target 1.2 in a config file", BAD_CONFIGS[14], []),
    ("study .. in a config file", BAD_CONFIGS[30], []),
    ("unknown dataset in a config file", BAD_CONFIGS[27], []),
    ("trials=0 on the command line", None, ["--config", "trials=0"]),
    ("study=.. on the command line", None, ["--config", "study=.."]),
]


def config_error_lines(result) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Config error:")]


@pytest.mark.slow
@pytest.mark.parametrize("case, cli", [c[1:] for c in SNAKEMAKE_CASES], ids=[c[0] for c in SNAKEMAKE_CASES])
def test_snakemake_refuses_bad_input_before_any_job_and_changes_nothing(case, cli, tiny_results, tmp_path):
    workdir = tmp_path / "study"
    shutil.copytree(tiny_results, workdir)  # a finished study: none of its files may change
    before = files_under(workdir / "results")
    args = ["--cores", "1", "--configfile", str(TINY_CONFIG)]
    if case is not None:
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(edited(case[1])))
        args[-1] = str(tmp_path / "bad.yaml")
        key, words = case[2], case[3]
    else:
        key, words = ("trials", "0 is less than the minimum") if "trials" in cli[1] else ("study", "not a folder")
    result = run_snakemake(workdir, *args, *cli, check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = config_error_lines(result)
    assert len(lines) == 1 and lines[0].startswith(f"Config error: config key {key}: ") and words in lines[0], lines
    assert files_under(workdir / "results") == before
    assert sorted(p.name for p in workdir.iterdir()) == sorted(p.name for p in tiny_results.iterdir())


@pytest.mark.slow
def test_a_missing_config_file_on_the_command_line_is_named(tmp_path):
    result = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "nope.yaml"), check=False)
    assert result.returncode == 1
    assert "nope.yaml" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_data_dependent_bad_input_stops_at_prepare_data_with_its_line_on_the_console(tmp_path):
    """train_examples 10 with batch size 32: known once the data is prepared, refused before any training."""
    path = tmp_path / "few.yaml"
    path.write_text(yaml.safe_dump(edited(BAD_FOR_THE_DATA[0][1])))
    result = run_snakemake(tmp_path, "--cores", "1", "--configfile", str(path), check=False)
    assert result.returncode == 1
    console = result.stdout + result.stderr
    failed = [line for line in console.splitlines() if line.startswith("Job failed")]
    assert failed == [
        "Job failed (logs/prepare_data/mnist1d.log): ConfigError: config key workloads.mnist1d_mlp.batch_sizes: "
        "batch size 32 is above the 10 training examples of 'mnist1d'"
    ], console[-3000:]
    assert "rule tune" not in console and not (tmp_path / "results").exists()
