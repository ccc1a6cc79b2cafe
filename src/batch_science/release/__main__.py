"""Import the paper's published measurements as a study, or export a study in the release layout.

    python -m batch_science.release import RELEASE_DIR --study paper_release
    python -m batch_science.release export results/<study> OUT_DIR

See docs/paper.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

import pandas as pd

from batch_science.io import read_parquet_metadata
from batch_science.release.exporter import write_release
from batch_science.release.importer import IMPORT_SUMMARY, import_release
from batch_science.release.layout import ReleaseError
from batch_science.trials import METRIC_COLUMNS, Target

# The workflow's rules that read only tables: an imported study runs these and never trains.
ANALYSIS_RULES = (
    "aggregate",
    "fit",
    "plot_scaling",
    "plot_variants",
    "plot_learning_rate",
    "plot_metaparameters",
    "plot_solution_quality",
    "tuning_budget",
    "plot_tuning_budget",
    "report_tables",
    "provenance",
    "summary",
    "figures",
    "all",
)


def parse_target(text: str) -> Target:
    """'error<0.01', 'cross_entropy<3.9' or 'average_precision>0.31' -> Target."""
    metrics = "|".join(METRIC_COLUMNS)
    match = re.fullmatch(rf"\s*({metrics})\s*([<>])\s*([-+0-9.eE]+)\s*", text)
    if not match:
        raise ReleaseError(
            f"target '{text}': expected METRIC<VALUE or METRIC>VALUE with METRIC {' or '.join(METRIC_COLUMNS)}"
        )
    metric, sign, value = match.groups()
    return Target(metric, float(value), "minimize" if sign == "<" else "maximize")


def _targets_from_args(items) -> dict[str, Target]:
    targets = {}
    for item in items or []:
        if "=" not in item:
            raise ReleaseError(f"--target '{item}': expected WORKLOAD_OR_DATASET=METRIC<VALUE, e.g. mnist=error<0.01")
        name, text = item.split("=", 1)
        targets[name] = parse_target(text)
    return targets


def _short_summary(summary: str, max_lines: int = 40) -> str:
    """The import summary, or only its counts when it is long."""
    lines = summary.strip().splitlines()
    if len(lines) > max_lines:
        lines = [line for line in lines if line.startswith(("Imported", "## "))]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batch_science.release", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    importing = commands.add_parser("import", help="import a release folder as results/<study>/")
    importing.add_argument("release_dir")
    importing.add_argument("--study", default="paper_release", help="study name (results/<study>/)")
    importing.add_argument("--results", default="results", help="results folder")
    importing.add_argument(
        "--target", action="append", help="WORKLOAD_OR_DATASET=METRIC<VALUE, e.g. mnist=error<0.01 (repeatable)"
    )
    importing.add_argument(
        "--first-complete",
        type=int,
        default=None,
        help="keep the first N COMPLETE trials per study, as the paper's plots (100); a workload with a study "
        "of fewer is left out, as the paper's loader refuses it",
    )
    importing.add_argument(
        "--allow-fewer",
        action="store_true",
        help="with --first-complete, keep a study of fewer COMPLETE trials (listed in the import summary)",
    )
    importing.add_argument("--force", action="store_true", help="replace a previous import of the same --study")
    importing.add_argument(
        "--strict", action="store_true", help="refuse the whole import if any study folder is malformed"
    )
    importing.add_argument(
        "--include",
        action="append",
        help="only study folders matching this pattern, e.g. 'mnist/simple_cnn_base/*/*' (repeatable)",
    )
    exporting = commands.add_parser("export", help="export results/<study>/ trials and curves in the release layout")
    exporting.add_argument("study_dir", help="results/<study> (with trials.parquet and curves.parquet)")
    exporting.add_argument("out_dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.command == "import":
            out = import_release(
                args.release_dir,
                args.study,
                args.results,
                _targets_from_args(args.target),
                args.strict,
                args.first_complete,
                args.include,
                args.allow_fewer,
                args.force,
            )
            print(_short_summary((out / IMPORT_SUMMARY).read_text()))
            print(
                f"every study and trial left out, with its reason: {out / IMPORT_SUMMARY}\n"
                f"imported into {out}; aggregate, fit and figures with:\n  snakemake --configfile {out}/config.yaml "
                f"--allowed-rules {' '.join(ANALYSIS_RULES)} --cores 1"
            )
        else:
            study_dir = Path(args.study_dir)
            for name in ("trials.parquet", "curves.parquet"):
                if not (study_dir / name).exists():
                    raise ReleaseError(f"{study_dir / name}: missing (run the pipeline's aggregate step first)")
            meta = read_parquet_metadata(study_dir / "trials.parquet")
            config = json.loads(meta["config"]) if "config" in meta else None
            written = write_release(
                pd.read_parquet(study_dir / "trials.parquet"),
                pd.read_parquet(study_dir / "curves.parquet"),
                args.out_dir,
                config,
            )
            print(f"wrote {len(written)} study folders under {args.out_dir}")
    except ReleaseError as error:
        print(f"release error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
