"""The study on a real SLURM, submitted by `snakemake --profile slurm` from the repository.

tests/slurm/start-cluster.sh brings up munged, slurmctld and slurmd (Debian's slurm-wlm, installed
if missing) under a temporary folder, with two fake GPUs, and two more nodes, each a slurmd in its
own network namespace (partition `multi`, one fake GPU each). The tune jobs must go through sbatch (as
SLURM's own records show), one of them is scancel'led mid-job and must be resubmitted and resume
from its finished trial, another gets SIGUSR1 (`scancel --signal=USR1`, as the profile's
`--signal=USR1@120` sends it before the time limit) through the plugin's srun and must checkpoint
its trial in flight, stop, and resume it in the retry; grouping must pack tune jobs into fewer SLURM
jobs, the results must equal a local run's, and every daemon must be stopped at the end. With
--slurm-array-jobs tune the tune jobs go in as one SLURM job array, one array task is scancel'led
and its retry resumes. Data-parallel studies ask for all their GPUs (two on one node) or nodes (one worker per
node, each in its network namespace), one multi-node job is scancel'led, and their steps to result
equal a one-device run's. Needs root: run `make test-slurm`.

Another study runs through the same cluster with `slurm_snakemake(cluster, workdir, configs, target)`
(configs: the --configfile files, merged in order) and `finish(process)`.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from batch_science.tables import partial_trial as partial_path
from batch_science.tables import trial_checkpoint as checkpoint_dir
from conftest import REPO, SNAKEMAKE, TINY_CONFIG, run_snakemake, signalled_study, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("BATCH_SCIENCE_SLURM_TEST") != "1",
        reason="starts a real SLURM cluster as root: run `make test-slurm`",
    ),
]

SCRIPTS = REPO / "tests" / "slurm"
NODES = ("bsnode1", "bsnode2")  # the namespaced nodes of partition `multi` (start-cluster.sh)
STUDY = "slurm"
CANCELLED_SHARD = ("mnist1d_mlp/sgd/b32", 0)  # 5000 steps a trial: the slowest, so scancel lands mid-job
CANCELLED_COMMENT = "rule_tune_wildcards_mnist1d_mlp_sgd_32_0"  # the plugin's --comment for that job
SIGNALLED_SHARD = ("mnist1d_mlp/sgd/b32", 1)  # trials 2 and 3
SIGNALLED_COMMENT = "rule_tune_wildcards_mnist1d_mlp_sgd_32_1"
FINAL_TABLES = ["trials.parquet", "curves.parquet", "steps_to_result.csv", "fits.csv"]
TARGET = f"results/{STUDY}/fits.csv"


@dataclass
class Cluster:
    folder: Path
    env: dict

    def run(self, *command: str) -> str:
        return subprocess.run(command, env=self.env, check=True, capture_output=True, text=True).stdout

    def jobs(self) -> list[dict]:
        """Every job slurmctld still knows (finished ones stay MinJobAge seconds), oldest first: its
        own id, its array's id and task (N/A outside arrays), state, comment (the plugin's rule name)
        and nodes."""
        keys = ("id", "array_id", "array_task", "state", "comment", "nodes")
        lines = self.run("squeue", "--states=all", "--noheader", "--format=%A|%F|%K|%T|%k|%N").split("\n")
        jobs = [dict(zip(keys, line.split("|"))) for line in lines if line.strip()]
        return sorted(jobs, key=lambda job: int(job["id"]))

    def job_details(self, job_id: str) -> str:
        return self.run("scontrol", "show", "job", "--details", job_id)

    def controller_log(self) -> str:
        return (self.folder / "log" / "slurmctld.log").read_text()


def daemon_running(name: str, pid: int) -> bool:
    try:
        return name in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Directly in /tmp: munged refuses a socket below a folder others cannot search (pytest's are 0700).
    folder = Path(tempfile.mkdtemp(prefix="batch-science-slurm-"))
    env = dict(os.environ, PATH=f"{folder}/bin:{os.environ['PATH']}", SLURM_CONF=str(folder / "slurm.conf"))
    pids = {}
    try:
        subprocess.run([SCRIPTS / "start-cluster.sh", folder, "--two-nodes"], check=True)
        # munged, slurmctld and one slurmd per node (slurmd-<node>.pid)
        pids = {path.stem: int(path.read_text()) for path in (folder / "run").glob("*.pid")}
        assert {"munged", "slurmctld", *(f"slurmd-{node}" for node in NODES)} <= set(pids), pids
        yield Cluster(folder, env)
    finally:
        stopped = subprocess.run([SCRIPTS / "stop-cluster.sh", folder], capture_output=True, text=True)
        still_running = [f"{name} ({pid})" for name, pid in pids.items() if daemon_running(name, pid)]
        assert stopped.returncode == 0 and not still_running, f"daemons left running: {still_running} {stopped.stderr}"
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not any(node in namespaces for node in NODES), f"network namespaces left: {namespaces}"
        # The daemons' logs stay with pytest's temporary files, for a failure's post-mortem.
        shutil.copytree(folder / "log", tmp_path_factory.mktemp("cluster_logs"), dirs_exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def study_config(tmp_path_factory):
    """The tiny study cut to one optimizer, two batch sizes, 2 tune jobs of 2 trials each."""
    folder = tmp_path_factory.mktemp("study")
    # data_dir absolute: prepared once, by the local run, for every run.
    overrides = signalled_study(STUDY, 4, 2, data_dir=str(folder / "tfds"))
    path = folder / "slurm.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, study_config):
    workdir = tmp_path_factory.mktemp("local")
    run_snakemake(workdir, TARGET, "--cores", "2", "--configfile", str(TINY_CONFIG), str(study_config))
    return workdir


def slurm_snakemake(cluster, workdir, configs, *args, profile="slurm"):
    """`snakemake --profile slurm`, run from the repository root as a user would; `configs`: one
    override file on top of the tiny study, or the list of --configfile files.

    One setting differs from the profile: the first status check 2 s after a job goes in, not 5.
    The plugin adds 10 s to the wait after every check that finds no job finished, so the suite's
    jobs of seconds were seen to finish up to tens of seconds late."""
    if isinstance(configs, Path):
        configs = [TINY_CONFIG, configs]
    command = [*SNAKEMAKE, *args, "--profile", str(profile), "--directory", str(workdir)]
    command += ["--slurm-init-seconds-before-status-checks", "2", "--configfile"]
    command += [str(config) for config in configs]
    return subprocess.Popen(
        command, cwd=REPO, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen, timeout: float = 900) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()  # our own child; `snakemake --unlock` is not needed: its folder is a temp one
        output, _ = process.communicate()
        raise AssertionError(f"snakemake --profile slurm hung:\n{output[-3000:]}") from None
    assert process.returncode == 0, f"snakemake --profile slurm failed:\n{output[-5000:]}"
    return output


@dataclass
class SlurmRun:
    workdir: Path
    output: str
    jobs: list
    cancelled_job: str
    kept_at_cancel: dict
    signalled_log: str  # the signalled job's log just after it stopped (its retry's log replaces it)


def tune_log_path(workdir: Path, study: str, shard: int) -> Path:
    return workdir / "logs" / "tune" / STUDY / study / f"shard{shard}.log"


def checkpointed_mid_trial(partial_dir: Path, trial_ids) -> bool:
    for trial_id in trial_ids:
        for state in checkpoint_dir(partial_dir, trial_id).glob("step_*/state.json"):
            try:
                if json.loads(state.read_text())["step"] > 0:
                    return True
            except OSError:  # replaced by a newer save meanwhile
                continue
    return False


@pytest.fixture(scope="module")
def slurm_run(cluster, local_run, study_config, tmp_path_factory):
    """The study through SLURM: one tune job is scancel'led once its first trial is on disk, another
    gets SIGUSR1 once a trial of it is checkpointed mid-way. Its data is prepared anew (locally)."""
    Path(yaml.safe_load(study_config.read_text())["data_dir"], "mnist1d.prepared").unlink()
    workdir = tmp_path_factory.mktemp("on_slurm")
    # One SLURM job per tune job: array tasks run without the plugin's srun, which --signal needs.
    process = slurm_snakemake(cluster, workdir, study_config, TARGET, "--slurm-array-jobs", "none")
    study, _ = CANCELLED_SHARD
    partial_dir = workdir / "results" / STUDY / "partial" / study
    signalled_log = tune_log_path(workdir, *SIGNALLED_SHARD)
    job_ids, done = {}, {}

    def running_job(comment):
        if not job_ids.get(comment):
            job_ids[comment] = next(
                (j["id"] for j in cluster.jobs() if j["comment"] == comment and j["state"] == "RUNNING"), None
            )
        return job_ids[comment]

    def cancel_and_signal_when_ready():
        """The two jobs run in either order or together: act on each as soon as it is ready."""
        # Job id first, then scancel the moment its first trial is on disk: the window for the
        # second trial to finish too is only scancel's own latency.
        if "cancel" not in done and running_job(CANCELLED_COMMENT) and partial_path(partial_dir, 0).exists():
            cluster.run("scancel", job_ids[CANCELLED_COMMENT])
            # The study's other shard writes into the same folder: only this job's trials (0 and 1) count.
            mine = [partial_path(partial_dir, trial_id) for trial_id in (0, 1)]
            done["cancel"] = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in mine if p.exists()}
        if "signal" not in done and running_job(SIGNALLED_COMMENT) and checkpointed_mid_trial(partial_dir, (2, 3)):
            cluster.run("scancel", "--signal=USR1", job_ids[SIGNALLED_COMMENT])
            done["signal"] = None
        if (
            "signal" in done
            and "stopped_log" not in done
            and signalled_log.exists()
            and "stopped by" in signalled_log.read_text()
        ):
            done["stopped_log"] = signalled_log.read_text()
        return len(done) == 3

    wait_for(cancel_and_signal_when_ready, "the cancelled and the signalled tune job", process, timeout=900)
    output = finish(process)
    return SlurmRun(workdir, output, cluster.jobs(), job_ids[CANCELLED_COMMENT], done["cancel"], done["stopped_log"])


def tune_jobs(jobs):
    return [j for j in jobs if j["comment"].startswith("rule_tune_")]


def test_profile_is_found_from_the_repository_root(slurm_run):
    # (with the workflow profile profiles/default, which Snakemake reads by itself)
    assert re.search(r"Using profiles? slurm\b", slurm_run.output), slurm_run.output[:500]


def test_tune_jobs_ran_through_sbatch_each_with_one_gpu(cluster, slurm_run):
    shards = {f"rule_tune_wildcards_mnist1d_mlp_sgd_{b}_{s}" for b in (32, 512) for s in (0, 1)}
    tune = tune_jobs(slurm_run.jobs)
    assert {j["comment"] for j in tune if j["state"] == "COMPLETED"} == shards, slurm_run.jobs
    log = cluster.controller_log()
    for job in tune:
        # slurmctld itself logs the sbatch submission and the node the job was given.
        assert re.search(rf"_slurm_rpc_submit_batch_job: JobId={job['id']}\b", log)
        # Started by the main scheduler or by backfill, whichever got there first.
        assert re.search(rf"(sched: Allocate|_start_job: Started) JobId={job['id']}\b", log), job
        details = cluster.job_details(job["id"])
        assert "TresPerJob=gres:gpu:1" in details, details  # one (fake) GPU asked and given
    assert all(j["comment"] != "rule_aggregate" for j in slurm_run.jobs), "aggregate is a local rule"
    # The tune code itself ran inside those SLURM jobs, and SLURM gave each a GPU to see.
    ran_in = {}
    for log_file in (slurm_run.workdir / "logs" / "tune" / STUDY).rglob("shard*.log"):
        for job_id, devices in re.findall(r"SLURM job (\d+) on \S+, CUDA_VISIBLE_DEVICES=(\S+)", log_file.read_text()):
            ran_in[job_id] = devices
    # (A cancelled job's log is replaced by its retry's, so only the completed jobs are checked.)
    assert {j["id"] for j in tune if j["state"] == "COMPLETED"} <= set(ran_in), ran_in
    assert set(ran_in.values()) <= {"0", "1"}, ran_in


def test_cancelled_tune_job_is_resubmitted_and_trains_only_unfinished_trials(slurm_run):
    states = [j["state"] for j in slurm_run.jobs if j["comment"] == CANCELLED_COMMENT]
    assert states == ["CANCELLED", "COMPLETED"], slurm_run.jobs
    # Almost always only trial 0; trial 1 too if it finished within scancel's latency.
    kept = len(slurm_run.kept_at_cancel)
    assert "trial_00000.parquet" in slurm_run.kept_at_cancel
    study, shard = CANCELLED_SHARD
    partial_dir = slurm_run.workdir / "results" / STUDY / "partial" / study
    now = {
        name: (p.stat().st_mtime_ns, p.read_bytes()) for name in slurm_run.kept_at_cancel for p in [partial_dir / name]
    }
    assert now == slurm_run.kept_at_cancel, "a trial finished before scancel was retrained"
    log = (slurm_run.workdir / "logs" / "tune" / STUDY / study / f"shard{shard}.log").read_text()
    assert f"2 trials, {kept} already finished, {2 - kept} to train" in log


def test_signalled_tune_job_checkpoints_its_trial_in_flight_and_the_retry_resumes_it(slurm_run):
    # SIGUSR1 went to the job's steps: through the plugin's srun it reached the Python tune process.
    stopped = re.search(
        r"stopped by SIGUSR1 .* 1 checkpointed mid-trial \(trial (\d) at step (\d+)\)", slurm_run.signalled_log
    )
    assert stopped, slurm_run.signalled_log
    trial_id, step = map(int, stopped.groups())
    states = [j["state"] for j in slurm_run.jobs if j["comment"] == SIGNALLED_COMMENT]
    assert len(states) == 2 and states[-1] == "COMPLETED", slurm_run.jobs
    log = tune_log_path(slurm_run.workdir, *SIGNALLED_SHARD).read_text()
    assert f"trial {trial_id} resumed at step {step} of 5000" in log, log


def test_prepare_data_runs_on_the_login_node(slurm_run):
    assert re.search(r"^localrule prepare_data:", slurm_run.output, re.M), slurm_run.output[-3000:]
    assert not [j for j in slurm_run.jobs if j["comment"].startswith("rule_prepare_data")], slurm_run.jobs


def test_results_equal_a_local_run(local_run, slurm_run):
    for table in FINAL_TABLES:
        expected, actual = (folder / "results" / STUDY / table for folder in (local_run, slurm_run.workdir))
        read = pd.read_csv if table.endswith(".csv") else pd.read_parquet
        pd.testing.assert_frame_equal(read(actual), read(expected), check_exact=True, obj=table)


def test_grouping_packs_tune_jobs_into_fewer_slurm_jobs(cluster, local_run, slurm_run, study_config, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("grouped")
    shards = [f"results/{STUDY}/trials/mnist1d_mlp/sgd/b512/shard{s}.parquet" for s in (0, 1)]
    known = {j["id"] for j in cluster.jobs()}
    # As slurm/config.yaml says for grouping: `resources: gpu: 1` caps each group at one GPU.
    grouping = ["--groups", "tune=tune", "--group-components", "tune=2", "--resources", "gpu=1"]
    process = slurm_snakemake(cluster, workdir, study_config, *shards, *grouping)
    finish(process)
    new = [j for j in cluster.jobs() if j["id"] not in known]
    assert [j["state"] for j in new] == ["COMPLETED"], f"2 tune jobs should make 1 SLURM job: {new}"
    details = cluster.job_details(new[0]["id"])
    assert "TresPerJob=gres:gpu:1" in details, details  # the group runs its tune jobs one after another on one GPU
    for shard in shards:
        pd.testing.assert_frame_equal(
            pd.read_parquet(workdir / shard), pd.read_parquet(local_run / shard), check_exact=True
        )


def kept_trials(partial_dir: Path, trial_ids) -> dict:
    """The finished trials' files now: name -> (mtime, bytes), to show later that none was rewritten."""
    paths = [partial_path(partial_dir, trial_id) for trial_id in trial_ids]
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in paths if p.exists()}


def assert_kept(partial_dir: Path, kept: dict) -> None:
    now = {name: ((partial_dir / name).stat().st_mtime_ns, (partial_dir / name).read_bytes()) for name in kept}
    assert now == kept, "a trial finished before scancel was retrained"


def cancel_once_first_trial_is_done(cluster, log: Path, partial_dir: Path, trial_ids, done: dict):
    """A wait_for condition: scancel the job that writes `log` (its SLURM job id is logged at its start)
    the moment the first of `trial_ids` is on disk; `done` gets the job id and the trials kept."""

    def condition():
        text = log.read_text() if log.exists() else ""
        started = re.search(r"SLURM job (\d+) on", text)
        if not started or not partial_path(partial_dir, trial_ids[0]).exists():
            return False
        [job] = [j for j in cluster.jobs() if j["id"] == started.group(1)]
        # An array task by <array>_<task>: the array's own id would cancel every task still running.
        cluster.run("scancel", job["id"] if job["array_task"] == "N/A" else f"{job['array_id']}_{job['array_task']}")
        done.update(job_id=started.group(1), kept=kept_trials(partial_dir, trial_ids), log_at_cancel=text)
        return True

    return condition


# Job arrays (the profile's slurm-array-jobs: tune): three tune jobs of the study, one array.
ARRAY_SHARDS = [("mnist1d_mlp/sgd/b32", 0), ("mnist1d_mlp/sgd/b512", 0), ("mnist1d_mlp/sgd/b512", 1)]


def shard_tables(study: str, shard: int) -> list[str]:
    return [f"results/{STUDY}/{kind}/{study}/shard{shard}.parquet" for kind in ("trials", "curves")]


@pytest.fixture(scope="module")
def array_run(cluster, local_run, study_config, tmp_path_factory):
    """The three tune jobs through SLURM as one job array; the array task of the first (5000-step
    trials) is scancel'led once its first trial is on disk."""
    workdir = tmp_path_factory.mktemp("array")
    known = {j["id"] for j in cluster.jobs()}
    targets = [t for s in ARRAY_SHARDS for t in shard_tables(*s)]
    process = slurm_snakemake(cluster, workdir, study_config, *targets, "--slurm-array-jobs", "tune")
    study, shard = ARRAY_SHARDS[0]
    partial_dir = workdir / "results" / STUDY / "partial" / study
    done = {}
    log = tune_log_path(workdir, study, shard)
    wait_for(cancel_once_first_trial_is_done(cluster, log, partial_dir, (0, 1), done), "an array task", process)
    output = finish(process)
    jobs = [j for j in cluster.jobs() if j["id"] not in known]
    # The plugin's known fault (2.8.0, jobstep 0.6.1): a failed array task deletes the outputs of the
    # array's first job, finished or not (its outer Snakemake owns that job). The trials stay in the
    # partial folder, so the same command again rebuilds those tables without training.
    logs = list((workdir / "logs" / "tune" / STUDY).rglob("shard*.log"))
    before = {path: path.read_text() for path in logs}
    rerun = finish(slurm_snakemake(cluster, workdir, study_config, *targets, "--slurm-array-jobs", "none"))
    rebuilt = [path.read_text() for path in logs if path.read_text() != before[path]]
    return dict(workdir=workdir, output=output, rerun=rerun, rebuilt=rebuilt, jobs=jobs, **done)


def test_tune_jobs_go_in_as_one_job_array(array_run):
    first_array = array_run["jobs"][0]["array_id"]
    tasks = [j for j in array_run["jobs"] if j["array_id"] == first_array]
    assert sorted(j["array_task"] for j in tasks) == ["1", "2", "3"], array_run["jobs"]
    assert [j["state"] for j in tasks if j["id"] == array_run["job_id"]] == ["CANCELLED"], array_run["jobs"]
    # The other tasks may fail too (the plugin's outer Snakemake of every task owns the array's first
    # job); whatever failed came back in later submissions and completed.
    retried = [j for j in array_run["jobs"] if j["array_id"] != first_array]
    assert retried and all(j["state"] == "COMPLETED" for j in retried), array_run["jobs"]


def test_cancelled_array_task_resumes_and_the_results_equal_a_local_run(array_run, local_run):
    study, shard = ARRAY_SHARDS[0]
    workdir = array_run["workdir"]
    assert "trial_00000.parquet" in array_run["kept"]
    assert_kept(workdir / "results" / STUDY / "partial" / study, array_run["kept"])
    retried = re.search(
        r"2 trials, (\d) already finished, (\d) to train", tune_log_path(workdir, study, shard).read_text()
    )
    assert retried and int(retried.group(1)) >= len(array_run["kept"]), array_run["rerun"][-3000:]
    # Whatever the rerun rebuilt, it trained nothing: every trial was kept.
    for text in array_run["rebuilt"]:
        assert "2 trials, 2 already finished, 0 to train" in text, text
    for table in [t for s in ARRAY_SHARDS for t in shard_tables(*s)]:
        expected, actual = (pd.read_parquet(folder / table) for folder in (local_run, workdir))
        pd.testing.assert_frame_equal(actual, expected, check_exact=True, obj=table)


# Data-parallel studies: nesterov at batch size 256 in float64 (two devices and one then give the
# same steps to result, tests/training/test_data_parallel.py), 3 trials in one tune job, each trial
# its whole budget (200 steps), so that a scancel after the first leaves work for the retry.
DP_STUDY = "data_parallel"
DP_BATCH = 256
DP_PATH = f"mnist1d_mlp/nesterov/b{DP_BATCH}"
DP_TARGET = f"results/{DP_STUDY}/steps_to_result.csv"


def dp_config(folder: Path, data_dir: str, name: str, **overrides) -> Path:
    study = {
        "study": DP_STUDY,
        "precision": "float64",
        "trials": 3,
        "trials_per_job": 3,
        "stop_at_target": False,
        "data_dir": data_dir,
        "workloads": {"mnist1d_mlp": {"batch_sizes": [DP_BATCH], "optimizers": ["nesterov"]}},
        **overrides,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


@pytest.fixture(scope="module")
def dp_data_dir(local_run, study_config):
    return yaml.safe_load(study_config.read_text())["data_dir"]  # prepared by the local run


@pytest.fixture(scope="module")
def dp_one_device(tmp_path_factory, dp_data_dir):
    """The study on one device, locally: the reference."""
    workdir = tmp_path_factory.mktemp("dp_one_device")
    config = dp_config(workdir, dp_data_dir, "one_device")
    run_snakemake(workdir, DP_TARGET, "--cores", "2", "--configfile", str(TINY_CONFIG), str(config))
    return workdir / "results" / DP_STUDY


def assert_data_parallel_result(results: Path, reference: Path) -> None:
    """Same steps to result, trial by trial, as the one-device run; metrics equal to float64 round-off."""
    keys = ["trial_id", "status", "steps_to_result", "best_step", "final_step"]
    trials, expected = (pd.read_parquet(f / "trials.parquet").sort_values("trial_id") for f in (results, reference))
    pd.testing.assert_frame_equal(trials[keys].reset_index(drop=True), expected[keys].reset_index(drop=True))
    assert trials["best_val_metric"].to_numpy() == pytest.approx(expected["best_val_metric"].to_numpy(), rel=1e-9)
    steps, expected = (pd.read_csv(f / "steps_to_result.csv") for f in (results, reference))
    assert steps["steps_to_result"].tolist() == expected["steps_to_result"].tolist(), (steps, expected)


def test_data_parallel_job_on_one_node_gets_both_gpus_and_the_one_device_result(
    cluster, dp_data_dir, dp_one_device, tmp_path_factory
):
    workdir = tmp_path_factory.mktemp("dp_two_gpus")
    config = dp_config(workdir, dp_data_dir, "two_gpus", data_parallel={"min_batch_size": DP_BATCH, "devices": 2})
    known = {j["id"] for j in cluster.jobs()}
    finish(slurm_snakemake(cluster, workdir, [TINY_CONFIG, config], DP_TARGET))
    [job] = [j for j in cluster.jobs() if j["id"] not in known]
    assert job["state"] == "COMPLETED" and job["comment"].startswith("rule_tune_data_parallel_"), job
    details = cluster.job_details(job["id"])
    assert "TresPerJob=gres:gpu:2" in details, details  # sbatch --gpus=2, from data_parallel.devices
    text = (workdir / "logs" / "tune" / DP_STUDY / DP_PATH / "shard0.log").read_text()
    assert f"SLURM job {job['id']} on " in text and "CUDA_VISIBLE_DEVICES=0,1" in text, text
    assert "data-parallel over 2 devices" in text, text
    assert_data_parallel_result(workdir / "results" / DP_STUDY, dp_one_device)


@pytest.fixture(scope="module")
def multi_node_profile(tmp_path_factory):
    """slurm/config.yaml with the one edit a site makes for data-parallel jobs across nodes: their partition."""
    profile = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
    profile["set-resources"]["tune_data_parallel"]["slurm_partition"] = "multi"
    folder = tmp_path_factory.mktemp("profile")
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def test_data_parallel_job_across_two_nodes_survives_scancel_with_the_one_device_result(
    cluster, dp_data_dir, dp_one_device, multi_node_profile, tmp_path_factory
):
    workdir = tmp_path_factory.mktemp("dp_two_nodes")
    parallel = {"min_batch_size": DP_BATCH, "devices": 1, "nodes": 2}
    config = dp_config(workdir, dp_data_dir, "two_nodes", data_parallel=parallel)
    known = {j["id"] for j in cluster.jobs()}
    process = slurm_snakemake(cluster, workdir, [TINY_CONFIG, config], DP_TARGET, profile=multi_node_profile)
    partial_dir = workdir / "results" / DP_STUDY / "partial" / DP_PATH
    log = workdir / "logs" / "tune" / DP_STUDY / DP_PATH / "shard0.log"
    done = {}
    wait_for(cancel_once_first_trial_is_done(cluster, log, partial_dir, (0, 1, 2), done), "the first trial", process)
    finish(process)

    jobs = [j for j in cluster.jobs() if j["id"] not in known]
    assert [j["state"] for j in jobs] == ["CANCELLED", "COMPLETED"], jobs
    assert jobs[0]["id"] == done["job_id"]
    for job in jobs:  # two nodes, each a slurmd in its own network namespace
        assert job["nodes"] == "bsnode[1-2]", job
        details = cluster.job_details(job["id"])
        assert "NumNodes=2 " in details and "TresPerNode=gres:gpu:1" in details, details
    # srun started one worker on each node, in the cancelled job and in its retry; the first worker
    # writes the trials, the retry trains only what is left.
    before, after = done["log_at_cancel"], log.read_text()
    for worker, node in enumerate(NODES):
        assert f"worker {worker}: {DP_PATH} shard 0: SLURM job {jobs[0]['id']} on {node}," in before, before
        assert f"worker {worker}: {DP_PATH} shard 0: SLURM job {jobs[1]['id']} on {node}," in after, after
    assert "data-parallel over 2 devices (1 per node)" in before, before
    # (Seen here: the cancelled job went on until all 3 trials were on disk, so the retry often
    # only writes the tables; what it must never do is retrain a finished trial.)
    retried = re.search(rf"worker 0: {DP_PATH} shard 0: 3 trials, (\d) already finished, (\d) to train", after)
    assert retried and int(retried.group(1)) >= len(done["kept"]), after
    assert_kept(partial_dir, done["kept"])
    assert_data_parallel_result(workdir / "results" / DP_STUDY, dp_one_device)


def test_own_keras_model_with_nesterov_and_adam_runs_through_slurm(cluster, dp_data_dir, tmp_path_factory):
    """The example a user copies (examples/own_model: a Keras CNN by import path, nesterov and adam),
    cut to a tiny budget and one batch size: its tune jobs go through sbatch, find the model module
    beside the first config file from inside the job, and the figures' tables hold both optimizers."""
    from test_own_model import EXAMPLE, TINY

    workdir = tmp_path_factory.mktemp("own_model")
    tiny = workdir / "tiny.yaml"
    one_batch_size = {"mnist1d_small_cnn": {**TINY["workloads"]["mnist1d_small_cnn"], "batch_sizes": [256]}}
    tiny.write_text(yaml.safe_dump({**TINY, "workloads": one_batch_size, "data_dir": dp_data_dir}))
    known = {j["id"] for j in cluster.jobs()}
    finish(slurm_snakemake(cluster, workdir, [EXAMPLE, tiny], "results/own_model/steps_to_result.csv"))
    tune = [j for j in cluster.jobs() if j["id"] not in known and j["comment"].startswith("rule_tune_")]
    assert len(tune) == 2 and all(j["state"] == "COMPLETED" for j in tune), tune  # one per optimizer
    steps = pd.read_csv(workdir / "results" / "own_model" / "steps_to_result.csv")
    assert set(steps["optimizer"]) == {"nesterov", "adam"} and set(steps["batch_size"]) == {256}
    trials = pd.read_parquet(workdir / "results" / "own_model" / "trials.parquet")
    assert set(trials["model"]) == {"model:small_cnn"} and len(trials) == 4
