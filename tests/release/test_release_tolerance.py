"""The importer reads what the paper's own loader (google-research batch_science/data_loader.py)
reads, and skips what it skips, on a synthetic release with the variations the real one has.

The expected steps to result, best trial and best value come from `paper_loader_results` below:
written from the loader's documented behaviour (COMPLETE trials only, measurements indexed by
step, the first row by (step, trial id) strictly better than the goal, the best row over all
measurements), not from the importer's code.
"""

import json
import math
import operator

import numpy as np
import pandas as pd
import pytest
import yaml

from batch_science.release.__main__ import main
from batch_science.release.exporter import write_release
from batch_science.release.importer import IMPORT_SUMMARY, import_release, read_release
from batch_science.release.layout import ReleaseError
from batch_science.tuning.study_config import check_study

# Release folder -> (metric column, goal, maximize), as the paper states its goals.
GOALS = {
    "mnist/simple_cnn_base/nesterov_momentum": ("val/classification_error", 0.01, False),
    "open_images_v4/resnet_50/nesterov_momentum": ("val/average_precision", 0.31, True),
    "solution_quality/fashion_mnist/simple_cnn_base/nesterov_momentum": ("val/classification_error", 0.1, False),
    "lm1b/transformer_base/nesterov_momentum": ("val/cross_entropy_error", 3.9, False),
}


def write_trial(study_dir, folder, meta, measurements=None, raw_csv=None):
    trial_dir = study_dir / str(folder)
    trial_dir.mkdir(parents=True)
    (trial_dir / "metadata.json").write_text(json.dumps(meta))
    if raw_csv is not None:
        (trial_dir / "measurements.csv").write_text(raw_csv)
    elif measurements is not None:
        pd.DataFrame(measurements).to_csv(trial_dir / "measurements.csv", index=False)


def write_study_json(study_dir, workload, batch_size, train_steps=3000):
    dataset, model, optimizer = workload.split("/")[-3:]
    study_dir.mkdir(parents=True, exist_ok=True)
    study = {
        "batch_size": batch_size,
        "dataset": dataset,
        "early_stopping": False,
        "model": model,
        "optimizer": optimizer,
        "parameter_configs": {
            "learning_rate": {"max_value": 10.0, "min_value": 0.0001, "scale": "LOG_SCALE", "type": "DOUBLE"}
        },
        "train_steps": train_steps,
    }
    (study_dir / "study.json").write_text(json.dumps(study))


def complete(trial_id, values, column, steps=None, **parameters):
    steps = steps or [0, 1000, 2000, 3000][: len(values)]
    meta = {
        "parameters": {"learning_rate": 0.1 * (trial_id + 1), "momentum": 0.9, **parameters},
        "status": "COMPLETE",
        "steps": int(max(steps)),
        "trial_id": trial_id,
    }
    measurements = {"step": steps, column: values, "train/cross_entropy_error": [1.0] * len(values)}
    return meta, measurements


@pytest.fixture
def release(tmp_path):
    """A release with every variation the issue lists, in four workloads."""
    root = tmp_path / "batch_science"
    error = "val/classification_error"
    mnist = "mnist/simple_cnn_base/nesterov_momentum"
    study = root / mnist / "64"
    write_study_json(study, mnist, 64)
    meta, m = complete(0, [0.9, 0.2, 0.008, 0.005], error, weight_decay=1e-4, optimizer_variant="v2")
    write_trial(study, 0, meta, m)  # unknown parameters: kept
    meta, m = complete(1, [0.9, 0.3, 0.009, 0.009], error)
    # steps written as floats, a repeated identical row
    write_trial(
        study,
        1,
        meta,
        raw_csv=f"step,{error},train/cross_entropy_error\n0.0,0.9,1.0\n1000.0,0.3,1.0\n1000.0,0.3,1.0\n"
        f"2000.0,0.009,1.0\n3000.0,0.009,1.0\n",
    )
    write_trial(study, 2, {"status": "INFEASIBLE", "parameters": {"learning_rate": 9.0}, "trial_id": 2})  # no csv
    write_trial(study, 3, {"status": "INFEASIBLE", "parameters": {"learning_rate": 8.0}}, raw_csv=f"step,{error}\n")
    write_trial(study, 4, {"status": "INCOMPLETE"})  # sparse metadata
    write_trial(study, 5, {"status": "STOPPING", "trial_id": 5})  # a status the loader does not know
    write_trial(study, 6, {"status": "INFEASIBLE"})  # only its status
    meta, m = complete(7, [0.9, 0.5, 0.2, 0.0099], error, steps=[0, 1000, 2000, 2500])
    write_trial(study, 7, meta, m)
    meta, m = complete(10, [0.9, 0.008, 0.007, 0.006], error)
    write_trial(study, 10, meta, m)  # trial ids need not be contiguous; 10 sorts after 7
    study = root / mnist / "128"
    write_study_json(study, mnist, 128)
    for trial_id in range(2):
        meta, m = complete(trial_id, [0.9, 0.2, 0.05], error)
        write_trial(study, trial_id, meta, m)  # no trial reaches the goal

    oi = "open_images_v4/resnet_50/nesterov_momentum"
    for batch_size, curves in ((64, ([0.05, 0.2, 0.32], [0.05, 0.311, 0.4])), (128, ([0.05, 0.31, 0.31],))):
        study = root / oi / str(batch_size)
        write_study_json(study, oi, batch_size)
        for trial_id, values in enumerate(curves):
            meta, m = complete(trial_id, values, "val/average_precision")
            write_trial(study, trial_id, meta, m)  # 0.31 exactly is not better than the goal

    quality = "solution_quality/fashion_mnist/simple_cnn_base/nesterov_momentum"
    study = root / quality / "2"
    write_study_json(study, quality, 2)
    meta, m = complete(0, [0.9, 0.12, 0.099], error)
    write_trial(study, 0, meta, m)

    lm = "lm1b/transformer_base/nesterov_momentum"
    study = root / lm / "16"
    write_study_json(study, lm, 16)
    meta, m = complete(0, [6.0, 4.0, 3.89], "val/cross_entropy_error")
    write_trial(study, 0, meta, m)
    meta, m = complete(1, [6.0, 3.8, 3.7], "val/cross_entropy_error")
    write_trial(study, 1, meta, m)
    return root


def paper_loader_results(root):
    """Per study folder: (steps to result, winning trial, best value, COMPLETE trials), as the
    paper's loader and measurement utilities compute them."""
    results = {}
    for study_json in sorted(root.rglob("study.json")):
        study_dir = study_json.parent
        workload = str(study_dir.parent.relative_to(root))
        column, goal, maximize = GOALS[workload]
        tables, ids = [], []
        for trial_dir in sorted((d for d in study_dir.iterdir() if d.is_dir()), key=lambda d: int(d.name)):
            meta = json.loads((trial_dir / "metadata.json").read_text())
            if meta["status"] != "COMPLETE":
                continue
            ids.append(meta["trial_id"])
            tables.append(pd.read_csv(trial_dir / "measurements.csv", index_col="step"))
        frame = pd.concat(tables, keys=ids, names=["trial_id"]).reset_index()
        frame = frame.sort_values(["step", "trial_id"], kind="stable")
        better = operator.gt if maximize else operator.lt
        good = frame[better(frame[column], goal)]
        best = frame[column].max() if maximize else frame[column].min()
        if len(good):
            results[str(study_dir.relative_to(root))] = (
                float(good.iloc[0]["step"]),
                int(good.iloc[0]["trial_id"]),
                best,
                len(ids),
            )
        else:
            results[str(study_dir.relative_to(root))] = (math.nan, -1, best, len(ids))
    return results


def test_importer_reads_every_study_the_paper_loader_reads_with_equal_results(release, tmp_path):
    out = import_release(release, "paper", tmp_path / "results")
    steps = pd.read_csv(out / "steps_to_result.csv")
    trials = pd.read_parquet(out / "trials.parquet")
    expected = paper_loader_results(release)
    assert len(steps) == len(expected) == 6
    by_folder = trials.drop_duplicates(["workload", "optimizer", "batch_size"]).set_index("release_path")
    for folder, (step, winner, best, n_complete) in expected.items():
        key = by_folder.loc[folder, ["workload", "optimizer", "batch_size"]]
        row = steps[
            (steps["workload"] == key["workload"])
            & (steps["optimizer"] == key["optimizer"])
            & (steps["batch_size"] == key["batch_size"])
        ].iloc[0]
        assert (row["steps_to_result"] == step) or (math.isnan(step) and math.isnan(row["steps_to_result"])), folder
        assert row["best_trial"] == winner, folder
        assert row["best_val_metric"] == best, folder
        assert row["n_trials"] == n_complete, folder  # COMPLETE trials, as the paper counts them
    # The values the reference found, pinned so that a reference gone wrong shows too.
    assert expected["mnist/simple_cnn_base/nesterov_momentum/64"] == (1000.0, 10, 0.005, 4)
    assert expected["open_images_v4/resnet_50/nesterov_momentum/64"] == (1000.0, 1, 0.4, 2)
    assert math.isnan(expected["open_images_v4/resnet_50/nesterov_momentum/128"][0])
    assert expected["solution_quality/fashion_mnist/simple_cnn_base/nesterov_momentum/2"][:2] == (2000.0, 0)
    assert expected["lm1b/transformer_base/nesterov_momentum/16"][:2] == (1000.0, 1)


def test_importer_tolerates_what_the_paper_loader_tolerates_and_says_so(release, tmp_path):
    out = import_release(release, "paper", tmp_path / "results")
    trials = pd.read_parquet(out / "trials.parquet")
    study = trials[(trials["workload"] == "mnist_simple_cnn_base") & (trials["batch_size"] == 64)].set_index("trial_id")
    assert sorted(study.index) == [0, 1, 2, 3, 7, 10]
    assert trials["config_hash"].nunique() == 1  # one import, one config: the tables never mix hashes
    assert study.loc[0, "weight_decay"] == 1e-4 and study.loc[0, "optimizer_variant"] == '"v2"'
    assert math.isnan(study.loc[1, "weight_decay"])
    assert list(study.loc[[2, 3], "status"]) == ["infeasible", "infeasible"]
    assert study.loc[1, "steps_to_result"] == 2000 and study.loc[7, "steps_to_result"] == 2500
    curves = pd.read_parquet(out / "curves.parquet")
    mnist64 = (curves["workload"] == "mnist_simple_cnn_base") & (curves["batch_size"] == 64)
    assert list(curves[mnist64 & (curves["trial_id"] == 1)]["step"]) == [0, 1000, 2000, 3000]
    assert not (mnist64 & curves["trial_id"].isin([2, 3])).any()  # infeasible trials without measurements
    oi = trials[trials["workload"] == "open_images_v4_resnet_50"]
    assert set(oi["target_metric"]) == {"average_precision"} and set(oi["target_direction"]) == {"maximize"}
    config = check_study(yaml.safe_load((out / "config.yaml").read_text()))
    assert config["workloads"]["open_images_v4_resnet_50"]["target"] == {
        "metric": "average_precision",
        "value": 0.31,
        "direction": "maximize",
    }
    assert config["workloads"]["solution_quality_fashion_mnist_simple_cnn_base"]["target"]["value"] == 0.1
    assert config["stop_at_target"] is False  # the paper's trials trained to their budget
    summary = (out / IMPORT_SUMMARY).read_text()
    mnist64 = release / "mnist/simple_cnn_base/nesterov_momentum/64"
    assert "## Studies left out: 0" in summary and "## Trials left out: 3" in summary
    assert f"{mnist64 / '4'}: INCOMPLETE" in summary
    assert f"{mnist64 / '5'}: status 'STOPPING' is not one of" in summary
    assert f"{mnist64 / '6'}: INFEASIBLE without a numeric learning_rate" in summary
    assert f"{mnist64 / '1' / 'measurements.csv'}: 1 repeated identical row(s) dropped" in summary


@pytest.mark.parametrize(
    "csv, reason",
    [
        ("step,val/classification_error\n0,0.9\n1000.5,0.3\n", "column 'step' must hold whole numbers"),
        ("step,val/classification_error\n0,0.9\n1000,0.3\n1000,0.2\n", "repeated steps [1000] with different"),
    ],
)
def test_a_complete_trial_the_loader_could_not_score_leaves_its_study_out(release, csv, reason):
    (release / "mnist/simple_cnn_base/nesterov_momentum/64/0/measurements.csv").write_text(csv)
    tables = read_release(release)
    assert len(tables.problems) == 1 and reason in tables.problems[0]
    assert 64 not in set(tables.trials[tables.trials["workload"] == "mnist_simple_cnn_base"]["batch_size"])
    assert tables.skipped_trials == [] and tables.notes == []  # a study left out is listed once, as a study


def test_first_complete_refuses_a_workload_with_too_few_as_the_paper_loader(release, tmp_path):
    tables = read_release(release, first_complete=2)
    mnist = release / "mnist/simple_cnn_base/nesterov_momentum"
    assert f"{mnist / '64'}" not in " ".join(tables.problems)  # 4 COMPLETE: cut to the first 2
    refused = {p.split(":")[0] for p in tables.problems}
    oi = release / "open_images_v4/resnet_50/nesterov_momentum"
    # Open Images 128 has one COMPLETE trial: the whole Open Images workload is refused, with both studies.
    assert refused == {
        str(oi / "128"),
        str(oi / "64"),
        str(release / "solution_quality/fashion_mnist/simple_cnn_base/nesterov_momentum/2"),
    }
    assert "only 1 COMPLETE trial(s), --first-complete asks for 2" in " ".join(tables.problems)
    study = tables.trials[(tables.trials["workload"] == "mnist_simple_cnn_base") & (tables.trials["batch_size"] == 64)]
    assert list(study["trial_id"]) == [0, 1]  # the first two COMPLETE
    assert (
        f"{mnist / '64'}: 4 trial(s) after the first 2 COMPLETE (trial ids 2-10) left out by --first-complete"
        in tables.skipped_trials
    )
    three = read_release(release, first_complete=3, allow_fewer=True).trials
    assert list(three[(three["workload"] == "mnist_simple_cnn_base") & (three["batch_size"] == 64)]["trial_id"]) == [
        0,
        1,
        2,
        3,
        7,
    ]  # the first three COMPLETE and the INFEASIBLE among them
    kept = read_release(release, first_complete=2, allow_fewer=True)
    assert kept.problems == [] and len(kept.notes) == 2 + 1  # two short studies, one repeated row
    assert "open_images_v4_resnet_50" in set(kept.trials["workload"])
    assert main(["import", str(release), "--study", "p", "--results", str(tmp_path), "--first-complete", "2"]) == 0
    assert "## Studies left out: 3" in (tmp_path / "p" / IMPORT_SUMMARY).read_text()


def test_study_name_must_be_safe_and_an_import_never_overwrites_unasked(release, tmp_path, capsys):
    results = tmp_path / "results"
    for name in ("..", "a/b", ".", ""):
        with pytest.raises(ReleaseError, match="expected one folder name"):
            import_release(release, name, results)
    assert not results.exists()
    out = import_release(release, "paper", results)
    before = (out / "trials.parquet").read_bytes()
    assert main(["import", str(release), "--study", "paper", "--results", str(results)]) == 2
    assert "exists (--force replaces a previous import)" in capsys.readouterr().err
    assert (out / "trials.parquet").read_bytes() == before
    (release / "lm1b").rename(tmp_path / "lm1b_elsewhere")
    assert main(["import", str(release), "--study", "paper", "--results", str(results), "--force"]) == 0
    assert "lm1b_transformer_base" not in set(pd.read_parquet(out / "trials.parquet")["workload"])
    trained = results / "trained"
    trained.mkdir()
    (trained / "config.yaml").write_text("study: trained\n")
    with pytest.raises(ReleaseError, match="it is not an import; remove it by hand"):
        import_release(release, "trained", results, force=True)
    assert (trained / "config.yaml").read_text() == "study: trained\n"
    assert sorted(p.name for p in results.iterdir()) == ["paper", "trained"]  # no temporary folder left


def test_an_import_that_fails_half_way_leaves_the_previous_one_as_it_was(release, tmp_path, monkeypatch):
    from batch_science.release import importer

    out = import_release(release, "paper", tmp_path / "results")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(importer, "aggregate_study", disk_full)
    with pytest.raises(OSError, match="No space left"):
        import_release(release, "paper", tmp_path / "results", force=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["paper"]


def test_release_import_export_round_trips_tolerated_trials(release, tmp_path):
    tables = read_release(release)
    write_release(tables.trials, tables.curves, tmp_path / "out")
    study = tmp_path / "out/mnist/simple_cnn_base/nesterov_momentum/64"
    assert sorted(int(p.name) for p in study.iterdir() if p.is_dir()) == [0, 1, 2, 3, 7, 10]
    assert json.loads((study / "0/metadata.json").read_text())["parameters"]["optimizer_variant"] == "v2"
    assert json.loads((study / "3/metadata.json").read_text()) == {
        "parameters": {"learning_rate": 8.0},
        "status": "INFEASIBLE",
    }
    assert not (study / "2/measurements.csv").exists()
    assert pd.read_csv(study / "3/measurements.csv").empty
    back = read_release(tmp_path / "out")
    columns = ["workload", "batch_size", "trial_id", "status", "steps_to_result", "best_val_metric", "weight_decay"]
    pd.testing.assert_frame_equal(back.trials[columns], tables.trials[columns])


def test_export_marks_trials_stopped_at_the_goal(tmp_path):
    from test_release import tune_tables

    trials, curves = tune_tables()
    # Trial 0 of nesterov/32 reached the goal at step 40; stopped there, its last step is 40 of a 40-step budget.
    # Make one stop early: it reached at step 20 and training stopped there.
    stop = (trials["optimizer"] == "nesterov") & (trials["batch_size"] == 256) & (trials["trial_id"] == 2)
    trials.loc[stop, ["steps_to_result", "final_step", "status"]] = [20.0, 20, "reached"]
    curves = curves[
        ~(
            (curves["optimizer"] == "nesterov")
            & (curves["batch_size"] == 256)
            & (curves["trial_id"] == 2)
            & (curves["step"] > 20)
        )
    ]
    write_release(trials, curves, tmp_path / "inferred")
    study = json.loads((tmp_path / "inferred/mnist1d/mlp/nesterov_momentum/256/study.json").read_text())
    meta = json.loads((tmp_path / "inferred/mnist1d/mlp/nesterov_momentum/256/2/metadata.json").read_text())
    assert study["early_stopping"] is True and meta["steps"] == 20 and study["train_steps"] == 40
    assert json.loads((tmp_path / "inferred/mnist1d/mlp/sgd/32/study.json").read_text())["early_stopping"] is False
    write_release(trials, curves, tmp_path / "configured", {"stop_at_target": True, "workloads": {}})
    assert json.loads((tmp_path / "configured/mnist1d/mlp/sgd/32/study.json").read_text())["early_stopping"] is True
    back = read_release(tmp_path / "inferred")
    from batch_science.release.importer import stopped_at_goal

    assert stopped_at_goal(back.trials) is True
    assert np.isclose(back.trials["steps_to_result"].dropna().min(), 20)


def test_a_trained_study_cannot_name_a_metric_only_a_release_records(tiny_config):
    from batch_science.config import ConfigError

    config = json.loads(json.dumps(tiny_config))
    workload = next(iter(config["workloads"]))
    config["workloads"][workload]["target"] = {"metric": "average_precision", "value": 0.3, "direction": "maximize"}
    with pytest.raises(ConfigError, match=rf"workloads.{workload}.target.metric: 'average_precision' is recorded only"):
        check_study(config)
    assert check_study({**config, "imported_from": "/release"})["workloads"][workload]["target"]["metric"] == (
        "average_precision"
    )


def test_command_line_goal_may_name_average_precision(release, tmp_path, capsys):
    from batch_science.release.__main__ import parse_target
    from batch_science.trials import Target

    assert parse_target("average_precision>0.35") == Target("average_precision", 0.35, "maximize")
    args = ["import", str(release), "--study", "p", "--results", str(tmp_path)]
    assert main([*args, "--target", "open_images_v4=average_precision>0.35"]) == 0
    steps = pd.read_csv(tmp_path / "p" / "steps_to_result.csv").set_index(["workload", "batch_size"])
    assert steps.loc[("open_images_v4_resnet_50", 64), "steps_to_result"] == 2000  # 0.4 at 2000, 0.311 at 1000
    assert "Imported 6 studies" in capsys.readouterr().out
    assert main([*args, "--force", "--target", "open_images_v4=precision>0.35"]) == 2
    assert "METRIC error or cross_entropy or average_precision" in capsys.readouterr().err
