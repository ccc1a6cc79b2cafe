"""Start a tune job: in this process, or, for a study trained data-parallel across nodes, as one
worker per node started by srun (`python -m batch_science.tuning.launcher JOB.json` on each).

Every worker runs the same tune job with MultiWorkerMirroredStrategy (training/data_parallel.py);
the first writes the tables.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from batch_science.config import Study, data_parallel_for
from batch_science.tuning.tune_job import run_tune_job

log = logging.getLogger(__name__)


def launch_tune_job(**job) -> None:
    """Run a tune job (run_tune_job's arguments) here, or across the nodes its study asks for."""
    parallel = data_parallel_for(job["config"], job["study"])
    if parallel and parallel["nodes"] > 1:  # one worker per node, started by srun (docs/cluster.md)
        run_across_nodes(parallel["nodes"], **job)
    else:
        run_tune_job(**job)


def run_across_nodes(nodes: int, **job) -> None:
    """A tune job spread over `nodes` nodes: srun starts one worker task per node in the job's
    allocation, each runs run_tune_job(**job) with MultiWorkerMirroredStrategy, the first writes.

    --overlap: the tune job's own step already holds the first node's CPUs and GPUs, which its
    worker needs too. SLURM signals every task on scancel or the time limit (SIGTERM), so the
    workers stop together and the finished trials stay in the partial folder.
    """
    job = {**job, "study": dataclasses.asdict(job["study"])}
    Path(job["partial_dir"]).mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=job["partial_dir"], prefix=".job.", suffix=".json") as spec:
        json.dump(job, spec)
        spec.flush()
        command = [
            "srun", "--overlap", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
            sys.executable, "-m", "batch_science.tuning.launcher", spec.name,
        ]  # fmt: skip
        log.info("starting the workers: %s", " ".join(command))
        returncode = subprocess.run(command, env=allocation_environment(os.environ)).returncode
    if returncode:
        raise SystemExit(returncode)


# What srun needs to find the job's allocation; SLURM_CONF too where a site names its config that way.
ALLOCATION_VARIABLES = ("SLURM_JOB_ID", "SLURM_JOBID", "SLURM_CLUSTER_NAME", "SLURM_CONF")


def allocation_environment(environment) -> dict:
    """`environment` without the SLURM variables of the job step this process runs in.

    The tune job runs in a one-task step on the first node (the plugin's `srun -n1`): srun would take
    that step's SLURM_NNODES, SLURM_NTASKS, ... as the allocation and refuse a second node ("Only
    allocated 1 nodes asked for 2"). Without them it asks slurmctld for the whole allocation."""
    return {
        name: value
        for name, value in environment.items()
        if not name.startswith(("SLURM_", "SRUN_")) or name in ALLOCATION_VARIABLES
    }


def main(job_path: str) -> None:
    """One worker of a multi-node tune job (see run_across_nodes)."""
    worker = os.environ.get("SLURM_PROCID", "?")
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format=f"%(asctime)s %(levelname)s worker {worker}: %(message)s"
    )
    with open(job_path) as f:
        job = json.load(f)
    run_tune_job(**{**job, "study": Study(**job["study"])})


if __name__ == "__main__":
    main(sys.argv[1])
