"""The paper's data release layout: reading, writing, round trips and malformed study folders."""

import json
import math

import pandas as pd
import pytest

from batch_science.release import importer
from batch_science.release.__main__ import ANALYSIS_RULES, main
from batch_science.release.exporter import write_release
from batch_science.release.importer import import_release, read_release
from batch_science.release.layout import ReleaseError, parameter_configs_to_search_space
from batch_science.tables import TRIAL_COLUMNS
from batch_science.trials import Target

SIMPLE_CNN = "mnist/simple_cnn_base/nesterov_momentum"


def write_study(
    root, folder, batch_size, trials, optimizer="nesterov_momentum", dataset="mnist", model="simple_cnn_base"
):
    """A study folder in the release layout; trials: list of (trial_id, status, parameters, measurements dict)."""
    study_dir = root / folder / str(batch_size)
    study_dir.mkdir(parents=True)
    study = {
        "batch_size": batch_size,
        "dataset": dataset,
        "early_stopping": False,
        "model": model,
        "optimizer": optimizer,
        "parameter_configs": {
            "learning_rate": {"max_value": 10.0, "min_value": 0.0001, "scale": "LOG_SCALE", "type": "DOUBLE"},
            "momentum": {"max_value": 0.9999, "min_value": 0.9, "scale": "REVERSE_LOG_SCALE", "type": "DOUBLE"},
            "label_smoothing": {"feasible_points": [0.0, 0.01, 0.1], "type": "DISCRETE"},
        },
        "train_steps": 3000,
    }
    (study_dir / "study.json").write_text(json.dumps(study, indent=2))
    for trial_id, status, parameters, measurements in trials:
        trial_dir = study_dir / str(trial_id)
        trial_dir.mkdir()
        meta = {
            "_internal_study_name": f"x-bs{batch_size}",
            "_internal_trial_id": trial_id + 7,
            "parameters": parameters,
            "status": status,
            "steps": int(max(measurements["step"])),
            "trial_id": trial_id,
        }
        (trial_dir / "metadata.json").write_text(json.dumps(meta, indent=2))
        pd.DataFrame(measurements).to_csv(trial_dir / "measurements.csv", index=False)
    return study_dir


def measurements(errors, steps=(0, 1000, 2000, 3000)):
    errors = list(errors)
    return {
        "step": list(steps)[: len(errors)],
        "train/cross_entropy_error": [2.3 * e + 0.01 for e in errors],
        "train/classification_error": [e * 0.9 for e in errors],
        "val/cross_entropy_error": [2.3 * e + 0.02 for e in errors],
        "val/classification_error": errors,
        "test/classification_error": [e * 1.1 for e in errors],
    }


def params(lr, momentum=0.99, smoothing=0.01):
    return {"learning_rate": lr, "momentum": momentum, "label_smoothing": smoothing}


@pytest.fixture
def release_dir(tmp_path):
    root = tmp_path / "batch_science"
    write_study(
        root,
        SIMPLE_CNN,
        64,
        [
            (0, "COMPLETE", params(0.1), measurements([0.9, 0.2, 0.009, 0.005])),  # reaches < 0.01 at 2000
            (1, "COMPLETE", params(0.03), measurements([0.9, 0.5, 0.05, 0.02])),  # never reaches
            (2, "INFEASIBLE", params(9.0), measurements([0.9, float("nan")])),  # diverged
            (3, "INCOMPLETE", params(0.05), measurements([0.9, 0.4])),  # ignored, as the paper does
            (
                4,
                "COMPLETE",
                params(0.2, 0.999, 0.1),
                measurements([0.9, 0.008, 0.007, 0.006], steps=(0, 1000, 2500, 3000)),
            ),
        ],
    )
    write_study(
        root,
        SIMPLE_CNN,
        1024,
        [
            (0, "COMPLETE", params(1.5), measurements([0.9, 0.3, 0.02, 0.0099])),
        ],
    )
    write_study(
        root,
        "mnist/fc_64_64_64/sgd",
        128,
        [
            (0, "COMPLETE", {"learning_rate": 0.5}, measurements([0.9, 0.1, 0.05])),
        ],
        optimizer="sgd",
        model="fc_64_64_64",
    )
    return root


def test_reader_gives_the_tune_tables_columns_and_steps_to_result(release_dir):
    tables = read_release(release_dir, "imported", targets={"mnist_fc_64_64_64": Target("error", 0.06)})
    assert tables.problems == []
    assert set(TRIAL_COLUMNS) <= set(tables.trials.columns)
    assert {
        "workload",
        "optimizer",
        "batch_size",
        "trial_id",
        "step",
        "train_cross_entropy",
        "val_cross_entropy",
        "val_error",
    } <= set(tables.curves.columns)
    study = tables.trials[
        (tables.trials["workload"] == "mnist_simple_cnn_base") & (tables.trials["batch_size"] == 64)
    ].set_index("trial_id")
    assert list(study.index) == [0, 1, 2, 4]  # INCOMPLETE trial 3 left out
    assert tables.incomplete == {f"{SIMPLE_CNN}/64": 1}
    assert study.loc[0, "status"] == "reached" and study.loc[0, "steps_to_result"] == 2000
    assert study.loc[1, "status"] == "not_reached" and math.isnan(study.loc[1, "steps_to_result"])
    assert study.loc[2, "status"] == "infeasible" and math.isnan(study.loc[2, "steps_to_result"])
    assert (
        study.loc[4, "steps_to_result"] == 1000
        and study.loc[4, "best_val_metric"] == 0.006
        and study.loc[4, "best_step"] == 3000
    )
    assert study.loc[4, "effective_learning_rate"] == pytest.approx(0.2 / 0.001)
    assert study.loc[0, "optimizer"] == "nesterov" and study.loc[0, "target_value"] == 0.01  # the paper's MNIST goal
    assert study.loc[0, "step_budget"] == 3000 and study.loc[0, "eval_every"] == 1000
    fc = tables.trials[tables.trials["workload"] == "mnist_fc_64_64_64"].iloc[0]
    assert (
        fc["optimizer"] == "sgd" and fc["momentum"] == 0.0 and fc["steps_to_result"] == 2000
    )  # --target override 0.06
    # The study's steps to result, computed by the pipeline's own best-trial rule.
    from batch_science.analysis.steps import best_trials

    best = best_trials(tables.trials).set_index(["workload", "batch_size"])
    assert best.loc[("mnist_simple_cnn_base", 64), "steps_to_result"] == 1000
    assert best.loc[("mnist_simple_cnn_base", 64), "best_trial"] == 4
    assert best.loc[("mnist_simple_cnn_base", 1024), "steps_to_result"] == 3000


def test_first_complete_keeps_the_first_n_complete_trials(release_dir):
    tables = read_release(release_dir, first_complete=1, targets={"mnist": Target("error", 0.06)})
    study = tables.trials[(tables.trials["workload"] == "mnist_simple_cnn_base") & (tables.trials["batch_size"] == 64)]
    assert list(study["trial_id"]) == [0]


def test_include_keeps_only_matching_study_folders(release_dir):
    tables = read_release(release_dir, include=["mnist/simple_cnn_base/*/1024"])
    assert set(zip(tables.trials["workload"], tables.trials["batch_size"])) == {("mnist_simple_cnn_base", 1024)}
    with pytest.raises(ReleaseError, match="no study folder matches cifar_10"):
        read_release(release_dir, include=["cifar_10/*"])


def read_tree(root):
    """Every file under root, JSON parsed and CSV as frames, by relative path."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.suffix == ".json":
            files[str(path.relative_to(root))] = json.loads(path.read_text())
        elif path.suffix == ".csv":
            files[str(path.relative_to(root))] = pd.read_csv(path)
    return files


def test_release_to_tables_to_release_is_lossless(release_dir, tmp_path):
    tables = read_release(release_dir, targets={"mnist": Target("error", 0.06)})
    out = tmp_path / "exported"
    write_release(tables.trials, tables.curves, out)
    original, exported = read_tree(release_dir), read_tree(out)
    incomplete = {k for k in original if k.startswith(f"{SIMPLE_CNN}/64/3/")}
    assert set(exported) == set(original) - incomplete
    for name, value in exported.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, original[name], check_exact=True)
        else:
            assert value == original[name], name


def tune_tables():
    """Trial and curve tables as a tune job writes them (two studies, one infeasible trial)."""
    records, curves = [], []
    for batch_size, optimizer in ((32, "nesterov"), (32, "sgd"), (256, "nesterov")):
        for trial_id in range(3):
            momentum = 0.0 if optimizer == "sgd" else 0.9 + 0.03 * trial_id
            errors = [0.9, 0.6 - 0.1 * trial_id, 0.35 - 0.05 * trial_id]
            infeasible = trial_id == 2 and optimizer == "sgd"
            steps_to_result = next((s for s, e in zip((0, 20, 40), errors) if e < 0.4), math.nan)
            records.append(
                {
                    "study": "tiny",
                    "workload": "mnist1d_mlp",
                    "dataset": "mnist1d",
                    "model": "mlp",
                    "optimizer": optimizer,
                    "batch_size": batch_size,
                    "target_metric": "error",
                    "target_value": 0.4,
                    "target_direction": "minimize",
                    "config_hash": "abc123def456",
                    "trial_id": trial_id,
                    "learning_rate": 0.1 * (trial_id + 1),
                    "momentum": momentum,
                    "decay_steps": 30 if optimizer != "sgd" else 0,
                    "end_factor": 0.01 if optimizer != "sgd" else 1.0,
                    "label_smoothing": 0.0,
                    "seed": 1000 + trial_id,
                    "step_budget": 40,
                    "eval_every": 20,
                    "effective_learning_rate": 0.1 * (trial_id + 1) / (1 - momentum),
                    "status": "infeasible"
                    if infeasible
                    else ("reached" if steps_to_result == steps_to_result else "not_reached"),
                    "steps_to_result": math.nan if infeasible else float(steps_to_result),
                    "best_val_metric": min(errors),
                    "best_step": 40,
                    "final_step": 40,
                }
            )
            for step, error in zip((0, 20, 40), errors):
                curves.append(
                    {
                        "workload": "mnist1d_mlp",
                        "optimizer": optimizer,
                        "batch_size": batch_size,
                        "trial_id": trial_id,
                        "step": step,
                        "train_cross_entropy": math.nan if step == 0 else 2 * error,
                        "val_cross_entropy": 2.1 * error,
                        "val_error": error,
                    }
                )
    return pd.DataFrame(records), pd.DataFrame(curves)


def test_tables_to_release_to_tables_is_lossless(tmp_path):
    trials, curves = tune_tables()
    write_release(trials, curves, tmp_path / "out")
    assert (tmp_path / "out/mnist1d/mlp/nesterov_momentum/256/2/measurements.csv").exists()
    back = read_release(tmp_path / "out", "tiny")
    assert back.problems == []
    order = ["workload", "optimizer", "batch_size", "trial_id"]
    pd.testing.assert_frame_equal(
        back.trials[trials.columns].sort_values(order, ignore_index=True),
        trials.sort_values(order, ignore_index=True),
        check_exact=True,
    )
    pd.testing.assert_frame_equal(
        back.curves[curves.columns].sort_values([*order, "step"], ignore_index=True),
        curves.sort_values([*order, "step"], ignore_index=True),
        check_exact=True,
    )


def test_adam_trials_are_refused_by_the_export_in_one_line_before_anything_is_written(tmp_path):
    trials, curves = tune_tables()
    trials.loc[trials["batch_size"] == trials["batch_size"].max(), "optimizer"] = "adam"
    with pytest.raises(ReleaseError, match="^trials table: optimizer adam has no name in the paper's release layout"):
        write_release(trials, curves, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_pruned_trial_is_exported_incomplete_and_comes_back_pruned(tmp_path):
    trials, curves = tune_tables()
    one = (trials["optimizer"] == "nesterov") & (trials["batch_size"] == 256) & (trials["trial_id"] == 0)
    trials.loc[one, ["status", "steps_to_result", "final_step", "best_step"]] = ["pruned", math.nan, 20, 20]
    curves = curves[~((curves["optimizer"] == "nesterov") & (curves["batch_size"] == 256) & (curves["trial_id"] == 0))
                    | (curves["step"] <= 20)]  # fmt: skip
    write_release(trials, curves, tmp_path / "out")
    meta = json.loads((tmp_path / "out/mnist1d/mlp/nesterov_momentum/256/0/metadata.json").read_text())
    assert (meta["status"], meta["steps"]) == ("INCOMPLETE", 20)  # the release's word for stopped early
    back = read_release(tmp_path / "out", "tiny")
    order = ["workload", "optimizer", "batch_size", "trial_id"]
    pd.testing.assert_frame_equal(
        back.trials[trials.columns].sort_values(order, ignore_index=True),
        trials.sort_values(order, ignore_index=True),
        check_exact=True,
    )


def test_exported_study_json_carries_the_search_space(tmp_path, tiny_config):
    trials, curves = tune_tables()
    write_release(trials, curves, tmp_path / "out", tiny_config)
    study = json.loads((tmp_path / "out/mnist1d/mlp/nesterov_momentum/32/study.json").read_text())
    configs = study["parameter_configs"]
    assert configs["momentum"] == {"max_value": 0.95, "min_value": 0.5, "scale": "REVERSE_LOG_SCALE", "type": "DOUBLE"}
    assert configs["learning_rate_decay_steps"] == {"max_value": 40, "min_value": 20, "scale": "", "type": "INTEGER"}
    assert study["optimizer"] == "nesterov_momentum" and study["train_steps"] == 40
    space = parameter_configs_to_search_space(configs, 40)
    assert space["decay_fraction"] == {"min": 0.5, "max": 1.0} and space["momentum"]["scale"] == "reverse_log"


@pytest.mark.parametrize(
    "break_it, reason",
    [
        (lambda d: (d / "study.json").unlink(), "study.json: missing"),
        (lambda d: (d / "study.json").write_text("{not json"), "study.json: not valid JSON"),
        (lambda d: (d / "0" / "measurements.csv").unlink(), "0/measurements.csv: missing"),
        (
            lambda d: (d / "0" / "metadata.json").write_text(json.dumps({"status": "COMPLETE"})),
            "0/metadata.json: missing key(s) parameters, trial_id",
        ),
        (
            lambda d: pd.DataFrame({"step": [0], "val/cross_entropy_error": [1.0]}).to_csv(
                d / "1" / "measurements.csv", index=False
            ),
            "1/measurements.csv: no 'val/classification_error' column",
        ),
        (lambda d: (d / "1").rename(d / "one"), "trial folder names must be integers"),
        (
            lambda d: (d / "1" / "metadata.json").write_text((d / "0" / "metadata.json").read_text()),
            "1/metadata.json: trial_id 0 does not match",
        ),
    ],
)
def test_malformed_study_is_reported_by_path_and_skipped_whole(release_dir, break_it, reason):
    broken = release_dir / SIMPLE_CNN / "64"
    break_it(broken)
    tables = read_release(release_dir, targets={"mnist": Target("error", 0.06)})
    assert len(tables.problems) == 1 and reason in tables.problems[0] and str(broken) in tables.problems[0]
    assert 64 not in set(tables.trials[tables.trials["workload"] == "mnist_simple_cnn_base"]["batch_size"])
    assert len(tables.trials) == 2  # the two intact studies, untouched
    with pytest.raises(ReleaseError, match="malformed or partial"):
        read_release(release_dir, targets={"mnist": Target("error", 0.06)}, strict=True)


def test_study_without_a_known_goal_is_left_out_with_its_path(release_dir):
    write_study(
        release_dir,
        "svhn/resnet_50/nesterov_momentum",
        64,
        [(0, "COMPLETE", params(0.1), measurements([0.9]))],
        dataset="svhn",
        model="resnet_50",
    )
    tables = read_release(release_dir)
    assert any("svhn/resnet_50/nesterov_momentum/64: no target known" in p for p in tables.problems)


def test_not_a_release_folder_is_one_line_error(tmp_path):
    with pytest.raises(ReleaseError, match="no study.json below"):
        read_release(tmp_path)
    assert main(["import", str(tmp_path / "nowhere")]) == 2


def test_import_writes_a_study_the_pipeline_validates_and_aggregates(release_dir, tmp_path):
    from batch_science.tuning.study_config import check_study

    out = import_release(release_dir, "paper_import", tmp_path / "results", targets={"mnist": Target("error", 0.06)})
    steps = pd.read_csv(out / "steps_to_result.csv").set_index(["workload", "batch_size"])
    assert steps.loc[("mnist_simple_cnn_base", 1024), "steps_to_result"] == 2000
    import yaml

    config = check_study(yaml.safe_load((out / "config.yaml").read_text()))
    assert config["workloads"]["mnist_simple_cnn_base"]["batch_sizes"] == [64, 1024]
    assert config["workloads"]["mnist_fc_64_64_64"]["model"] == {"name": "fully_connected", "depth": 3, "width": 64}
    assert (out / "trials/mnist_simple_cnn_base/nesterov/b64/shard0.parquet").exists()


@pytest.mark.slow
def test_pipeline_aggregates_fits_and_plots_an_imported_release_without_training(release_dir, tmp_path):
    from conftest import run_snakemake

    workdir = tmp_path / "work"
    out = import_release(release_dir, "paper_import", workdir / "results", targets={"mnist": Target("error", 0.06)})
    rules = ["--allowed-rules", *ANALYSIS_RULES]
    result = run_snakemake(
        workdir, "--cores", "1", "--configfile", str(out / "config.yaml"), "--config", "bootstrap=10", *rules
    )
    log = result.stdout + result.stderr
    assert "rule fit" in log and "rule tune" not in log and "prepare_data" not in log
    assert (out / "figures" / "steps_to_result.png").exists() and (out / "fits.csv").exists()


def test_imported_workloads_are_named_as_the_paper_config_names_them():
    assert importer.workload_name(("mnist_subsets", "mnist_13750", "simple_cnn_base")) == "mnist_13750_simple_cnn_base"
    assert importer.workload_name(("cifar_10", "resnet_8")) == "cifar10_resnet_8"
    assert (
        importer.workload_name(("imagenet_subsets", "imagenet_half_images", "resnet_50"))
        == "imagenet_half_images_resnet_50"
    )
    assert importer.default_target("imagenet_subsets/imagenet_half_images", "resnet_50") == Target("error", 0.25)
    assert importer.default_target("mnist_subsets/mnist_6875", "simple_cnn_base") == Target("error", 0.01)
    assert importer.default_target("open_images_v4", "resnet_50") == Target("average_precision", 0.31, "maximize")
    assert importer.default_target("solution_quality/fashion_mnist", "simple_cnn_base") == Target("error", 0.1)
    assert importer.default_target("solution_quality/mnist", "simple_cnn_base") == Target("error", 0.01)
    assert importer.default_target("svhn", "resnet_50") is None


def test_command_line_exports_a_study_and_imports_it_back(tmp_path, tiny_config, capsys):
    from batch_science.analysis.aggregate import aggregate_study
    from batch_science.io import write_parquet

    trials, curves = tune_tables()
    study_dir = tmp_path / "results" / "tiny"
    write_parquet(trials, study_dir / "shard_trials.parquet", {"config": json.dumps(tiny_config)})
    write_parquet(curves, study_dir / "shard_curves.parquet", {"config": json.dumps(tiny_config)})
    aggregate_study(
        [study_dir / "shard_trials.parquet"],
        [study_dir / "shard_curves.parquet"],
        study_dir / "trials.parquet",
        study_dir / "curves.parquet",
        study_dir / "steps_to_result.csv",
    )
    assert main(["export", str(study_dir), str(tmp_path / "exported")]) == 0
    assert "wrote 3 study folders" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "exported"), "--study", "tiny", "--results", str(tmp_path / "back")]) == 0
    assert "--allowed-rules aggregate fit" in capsys.readouterr().out
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "back" / "tiny" / "steps_to_result.csv"), pd.read_csv(study_dir / "steps_to_result.csv")
    )
    assert main(["export", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    assert "nowhere/trials.parquet: missing" in capsys.readouterr().err


def test_language_model_study_with_its_own_columns_round_trips(tmp_path):
    root = tmp_path / "release"
    lm = {
        "step": [0, 500, 1500],
        "val/cross_entropy_error": [6.0, 4.2, 3.85],
        "test/cross_entropy_error": [6.1, 4.3, 3.9],
    }
    write_study(
        root,
        "lm1b/transformer_base/nesterov_momentum",
        16,
        [(0, "COMPLETE", params(0.1), lm)],
        dataset="lm1b",
        model="transformer_base",
    )
    tables = read_release(root)
    trial = tables.trials.iloc[0]
    assert trial["workload"] == "lm1b_transformer_base" and trial["target_metric"] == "cross_entropy"
    assert trial["steps_to_result"] == 1500 and trial["eval_every"] == 750
    assert tables.curves["val_error"].isna().all() and tables.curves["train_cross_entropy"].isna().all()
    write_release(tables.trials, tables.curves, tmp_path / "out")
    assert read_tree(tmp_path / "out").keys() == read_tree(root).keys()
    for name, value in read_tree(tmp_path / "out").items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, read_tree(root)[name], check_exact=True)
        else:
            assert value == read_tree(root)[name]
