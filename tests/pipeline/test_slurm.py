"""The study on a real single-node SLURM, submitted by `snakemake --profile slurm` from the repository.

tests/slurm/start-cluster.sh brings up munged, slurmctld and slurmd (Debian's slurm-wlm, installed
if missing) under a temporary folder, with two fake GPUs. The tune jobs must go through sbatch (as
SLURM's own records show), one of them is scancel'led mid-job and must be resubmitted and resume
from its finished trial, another gets SIGUSR1 (`scancel --signal=USR1`, as the profile's
`--signal=USR1@120` sends it before the time limit) through the plugin's srun and must checkpoint
its trial in flight, stop, and resume it in the retry; grouping must pack tune jobs into fewer SLURM
jobs, the results must equal a local run's, and every daemon must be stopped at the end. Needs
root: run `make test-slurm`.
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
DAEMONS = ("munged", "slurmctld", "slurmd")
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
        """Every job slurmctld still knows (finished ones stay MinJobAge seconds), oldest first."""
        lines = self.run("squeue", "--states=all", "--noheader", "--format=%i|%T|%k").split("\n")
        jobs = [dict(zip(("id", "state", "comment"), line.split("|"))) for line in lines if line.strip()]
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
        subprocess.run([SCRIPTS / "start-cluster.sh", folder], check=True)
        pids = {name: int((folder / "run" / f"{name}.pid").read_text()) for name in DAEMONS}
        yield Cluster(folder, env)
    finally:
        stopped = subprocess.run([SCRIPTS / "stop-cluster.sh", folder], capture_output=True, text=True)
        still_running = [f"{name} ({pid})" for name, pid in pids.items() if daemon_running(name, pid)]
        assert stopped.returncode == 0 and not still_running, f"daemons left running: {still_running} {stopped.stderr}"
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


def slurm_snakemake(cluster, workdir, study_config, *args):
    """`snakemake --profile slurm`, run from the repository root as a user would."""
    command = [
        *SNAKEMAKE,
        *args,
        "--profile",
        "slurm",
        "--directory",
        str(workdir),
        "--configfile",
        str(TINY_CONFIG),
        str(study_config),
    ]
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
    process = slurm_snakemake(cluster, workdir, study_config, TARGET)
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
    assert "Using profile slurm for setting default command line arguments" in slurm_run.output


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
    process = slurm_snakemake(
        cluster, workdir, study_config, *shards, "--groups", "tune=tune", "--group-components", "tune=2"
    )
    finish(process)
    new = [j for j in cluster.jobs() if j["id"] not in known]
    assert [j["state"] for j in new] == ["COMPLETED"], f"2 tune jobs should make 1 SLURM job: {new}"
    details = cluster.job_details(new[0]["id"])
    assert "TresPerJob=gres:gpu:1" in details, details  # the group runs its tune jobs one after another on one GPU
    for shard in shards:
        pd.testing.assert_frame_equal(
            pd.read_parquet(workdir / shard), pd.read_parquet(local_run / shard), check_exact=True
        )
