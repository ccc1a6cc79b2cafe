"""Results follow their config, through real Snakemake runs of the tiny study.

An edit reruns exactly the tune jobs whose trials it changes (each job's shard fingerprint is a
rule param) and what follows them; runtime settings rerun nothing; the study tables carry one
config hash; aggregate refuses shards of another config; a damaged shard or study table is
rebuilt by a plain rerun from the finished trials kept in the partial folder.
"""

import re
import shutil

import pandas as pd
import pytest
import yaml

from batch_science.config import Study, config_hash
from batch_science.io import read_parquet_metadata
from batch_science.tables import shard_table
from batch_science.tuning.study_config import load_config
from conftest import TINY_CONFIG, run_snakemake

pytestmark = pytest.mark.slow

ALL_SHARDS = {(optimizer, b, shard) for optimizer in ("sgd", "nesterov") for b in (32, 256) for shard in (0, 1)}


def copy_of(tiny_results, tmp_path):
    workdir = tmp_path / "study"
    shutil.copytree(tiny_results, workdir)  # keeps modification times: Snakemake sees a finished study
    return workdir


def with_edit(tmp_path, edit: dict | None):
    args = ["--configfile", str(TINY_CONFIG)]
    if edit:
        path = tmp_path / "edit.yaml"
        path.write_text(yaml.safe_dump(edit))
        args.append(str(path))
    return args


def tune_jobs_planned(workdir, tmp_path, edit) -> set:
    """(optimizer, batch size, shard) of each tune job a dry run of the edited config would run."""
    result = run_snakemake(workdir, "-n", *with_edit(tmp_path, edit))
    jobs = re.findall(
        r"rule tune:.*?wildcards: workload=\w+, optimizer=(\w+), batch_size=(\d+), shard=(\d+)",
        result.stdout,
        flags=re.S,
    )
    return {(optimizer, int(b), int(shard)) for optimizer, b, shard in jobs}


@pytest.mark.parametrize(
    "edit, expected",
    [
        ({"checkpoint_minutes": 0.5}, set()),  # how a run is carried out, not what it computes
        ({"bootstrap": 10}, set()),  # the analysis only
        ({"search_spaces": {"nesterov": {"learning_rate": {"min": 0.02, "max": 0.2, "scale": "log"}}}},
         {s for s in ALL_SHARDS if s[0] == "nesterov"}),
        ({"workloads": {"mnist1d_mlp": {"eval_every": {"32": 20, "256": 25}}}}, {s for s in ALL_SHARDS if s[1] == 256}),
        ({"trials": 5}, {(o, b, 2) for o in ("sgd", "nesterov") for b in (32, 256)}),  # one new trial per study
        ({"workloads": {"mnist1d_mlp": {"target": {"value": 0.7}}}}, ALL_SHARDS),
        ({"workloads": {"mnist1d_mlp": {"model": {"hidden": [32]}}}}, ALL_SHARDS),
        ({"precision": "float64"}, ALL_SHARDS),
        ({"seed": 1}, ALL_SHARDS),
    ],
    ids=["checkpoint_minutes", "bootstrap", "nesterov space", "eval_every at 256", "trials", "target", "model",
         "precision", "seed"],
)  # fmt: skip
def test_an_edit_reruns_exactly_the_tune_jobs_it_affects(edit, expected, tiny_results, tmp_path):
    workdir = copy_of(tiny_results, tmp_path)
    assert tune_jobs_planned(workdir, tmp_path, edit) == expected


def files(folder):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*.parquet"))}


def test_after_an_edit_the_tables_hold_one_config_and_the_other_shards_are_untouched(tiny_results, tmp_path):
    workdir = copy_of(tiny_results, tmp_path)
    results = workdir / "results" / "tiny"
    edit = {"trials": 5}
    shards_before = files(results / "trials")
    run_snakemake(workdir, "--cores", "2", *with_edit(tmp_path, edit))
    config = load_config(TINY_CONFIG, edit)
    trials = pd.read_parquet(results / "trials.parquet")
    assert len(trials) == 4 * 5
    assert set(trials["config_hash"]) == {config_hash(config)}
    assert read_parquet_metadata(results / "trials.parquet")["config_hash"] == config_hash(config)
    assert set(pd.read_csv(results / "steps_to_result.csv")["n_trials"]) == {5}
    assert {p: v for p, v in files(results / "trials").items() if p in shards_before} == shards_before
    again = run_snakemake(workdir, "-n", *with_edit(tmp_path, edit))
    assert "Nothing to be done" in again.stdout + again.stderr


def test_aggregate_refuses_shards_of_another_config_in_one_line(tiny_results, tmp_path):
    """Tune jobs not rerun after an edit (here: only modification times as rerun triggers); aggregate,
    made to run, must not mix the old shards with the config's."""
    workdir = copy_of(tiny_results, tmp_path)
    results = workdir / "results" / "tiny"
    (results / "trials.parquet").unlink()
    edit = {"search_spaces": {"sgd": {"learning_rate": {"min": 0.1, "max": 0.5, "scale": "log"}}}}
    result = run_snakemake(
        workdir, "--cores", "1", "--rerun-triggers", "mtime", *with_edit(tmp_path, edit), check=False
    )
    assert result.returncode == 1
    failed = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Job failed")]
    assert len(failed) == 1 and "aggregate: 8 shard tables were made with another config than this one" in failed[0]
    assert all(f"trials/mnist1d_mlp/sgd/b{b}/shard{s}.parquet" in failed[0] for b in (32, 256) for s in (0, 1))
    assert "nesterov" not in failed[0]
    assert not (results / "trials.parquet").exists() and not (results / "steps_to_result.csv").exists()


def test_a_damaged_shard_and_study_table_are_rebuilt_by_a_plain_rerun(tiny_results, tmp_path):
    workdir = copy_of(tiny_results, tmp_path)
    results = workdir / "results" / "tiny"
    tables = ["trials.parquet", "curves.parquet", "steps_to_result.csv"]
    expected = {name: (results / name).read_bytes() for name in tables[2:]}
    expected_trials = pd.read_parquet(results / "trials.parquet")
    shard = workdir / shard_table("results/tiny", "curves", Study("mnist1d_mlp", "nesterov", 256), 1)
    shard.write_bytes(shard.read_bytes()[: len(shard.read_bytes()) // 2])  # cut short, as by a full disk
    steps = results / "steps_to_result.csv"
    steps.write_bytes(steps.read_bytes()[:-7])
    result = run_snakemake(workdir, "--cores", "1", "--configfile", str(TINY_CONFIG))
    console = result.stdout + result.stderr
    assert f"{shard.relative_to(workdir)}: unreadable" in console and "steps_to_result.csv: unreadable" in console
    tune_jobs = re.findall(r"rule tune:", console)
    assert len(tune_jobs) == 1
    log = (workdir / "logs/tune/tiny/mnist1d_mlp/nesterov/b256/shard1.log").read_text()
    assert "2 trials, 2 already finished, 0 to train" in log
    for name, content in expected.items():
        assert (results / name).read_bytes() == content, name
    pd.testing.assert_frame_equal(pd.read_parquet(results / "trials.parquet"), expected_trials, check_exact=True)
    again = run_snakemake(workdir, "-n", "--configfile", str(TINY_CONFIG))
    assert "Nothing to be done" in again.stdout + again.stderr


def test_make_clean_removes_everything_a_run_wrote(tiny_results, tmp_path):
    import subprocess

    from conftest import REPO

    workdir = copy_of(tiny_results, tmp_path)
    subprocess.run(["make", "-s", "-f", str(REPO / "Makefile"), "-C", str(workdir), "clean"], check=True)
    assert list(workdir.iterdir()) == []
