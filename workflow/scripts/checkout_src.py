"""Imported first by every script: puts this checkout's src/ first on sys.path, so a job runs the
workflow's own package also where only its third-party packages are installed (the conda env of
envs/study.yaml under `--sdm conda`). Snakemake puts this folder on the scripts' sys.path."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
