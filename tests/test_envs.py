"""The conda environment files build as Snakemake copies them and hold the pyproject.toml pins.

`snakemake --sdm conda` copies envs/study.yaml to .snakemake/conda/<hash>.yaml and builds it there,
so the file must name no paths; the workflow's own package reaches the jobs from the checkout's src/
(Snakefile, workflow/scripts/checkout_src.py). conda cannot run on the test machines, so the slow
test (`make test-env`) builds a fresh venv from the env file's pip list (pip's cache or PyPI) and
runs a tune job through Snakemake with that venv's Python, batch_science not installed, as the
conda env would.
"""

import os
import re
import subprocess
import venv

import pytest
import tomllib
import yaml

from conftest import REPO, TINY_CONFIG

ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


def pip_list(env_file) -> list[str]:
    dependencies = yaml.safe_load(env_file.read_text())["dependencies"]
    return next(entry["pip"] for entry in dependencies if isinstance(entry, dict) and "pip" in entry)


def normalised(requirement: str) -> str:
    name, version = requirement.split("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def test_there_are_env_files():
    assert ENV_FILES


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_file_pins_the_pyproject_versions_and_names_no_paths(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [re.sub(r"\s*#.*", "", d) for d in project["dependencies"]]
    packages = pip_list(env_file)
    assert sorted(map(normalised, packages)) == sorted(map(normalised, pins))
    # A path would be read relative to .snakemake/conda/, where Snakemake copies the file.
    assert not [p for p in packages if p.startswith("-") or "/" in p or p.startswith(".")], packages
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    minimum = re.search(r">=\s*([\d.]+)", project["requires-python"]).group(1)
    assert python == f"python={minimum}", (python, project["requires-python"])


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("BATCH_SCIENCE_ENV_TEST") != "1",
    reason="installs the env file's packages into a fresh venv (minutes): run `make test-env`",
)
def test_a_fresh_env_from_the_env_file_runs_a_tune_job_without_the_package(tmp_path):
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    packages = pip_list(REPO / "envs" / "study.yaml")
    subprocess.run([python, "-m", "pip", "install", "--quiet", *packages], check=True)
    # As in the conda env: the package is not installed, only its dependencies.
    missing = subprocess.run([python, "-c", "import batch_science"], cwd=tmp_path, capture_output=True)
    assert missing.returncode != 0
    overrides = tmp_path / "one_job.yaml"
    overrides.write_text(yaml.safe_dump({"study": "env", "data_dir": str(tmp_path / "tfds")}))
    shard = "results/env/trials/mnist1d_mlp/sgd/b256/shard0.parquet"
    command = [python, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
    command += [shard, "--cores", "2", "--configfile", str(TINY_CONFIG), str(overrides)]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (tmp_path / shard).exists()
    assert "checkout_src" in (REPO / "workflow" / "scripts" / "tune.py").read_text()
