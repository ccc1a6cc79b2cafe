"""Imported first by every script: puts this checkout's src/ first on sys.path, so a job runs the
workflow's own package also where only its third-party packages are installed (the conda env of
envs/study.yaml under `--sdm conda`). Snakemake puts this folder on the scripts' sys.path."""

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]  # the repository: the analysis code's git revision
sys.path.insert(0, str(CHECKOUT / "src"))
