"""Paths of the analysis outputs a study config asks for (used by rules/figures.smk and rules/report.smk)."""

from __future__ import annotations

from batch_science.analysis.variants import model_description, training_examples, variant_groups
from batch_science.config import shard_count, studies
from batch_science.tables import tune_benchmark


def figure_files(config: dict, results: str) -> list[str]:
    """Every study-wide figure; model and dataset-size comparisons only for the variants the config defines."""
    figures = f"{results}/figures"
    names = [
        "steps_to_result",
        "steps_to_result_normalized",
        "optimizer_comparison",
        "learning_rate",
        "solution_quality",
        "tuning_budget",
    ]
    variants = [f"{kind}_variants" for kind, groups in variant_groups(config["workloads"]).items() if groups]
    return [f"{figures}/{name}.png" for name in [*names, *variants]]


def report_files(results: str) -> list[str]:
    report = f"{results}/report"
    return [f"{results}/summary.md", *(f"{report}/{name}.html" for name in REPORT_PAGES)]


REPORT_PAGES = ["summary", "steps_to_result", "best_metaparameters", "fits", "tuning_budget", "provenance"]


def tune_benchmarks(config: dict) -> list[str]:
    """Expected benchmark files of the tune jobs (as rules/tune.smk names them); missing ones are reported as such."""
    return [
        tune_benchmark(config["study"], s, shard)
        for s in studies(config)
        for shard in range(shard_count(config, s.workload))
    ]


def variant_labels(config: dict, kind: str) -> dict[str, str]:
    """How each workload differs from the others of its group (its model, or its training examples)."""
    describe = model_description if kind == "model" else training_examples
    return {name: f"{name}: {describe(workload)}" for name, workload in config["workloads"].items()}
