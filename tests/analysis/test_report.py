"""The report's numbers follow from the raw trial tables; the report builds from the tables alone."""

import json
import math
from dataclasses import astuple
from html.parser import HTMLParser

import pandas as pd
import pytest

from batch_science.analysis.fit import fit_workloads
from batch_science.analysis.report import number, write_provenance, write_report_tables
from batch_science.analysis.robustness import tuning_budget_table
from batch_science.analysis.steps import best_trials, with_interpolated_steps
from batch_science.analysis.summary import study_summary
from batch_science.analysis.variants import dataset_size_variants, model_variants
from batch_science.config import shard_count, shard_trials, studies
from batch_science.io import write_parquet
from batch_science.tables import shard_table
from conftest import REPO, run_snakemake
from synthetic import synthetic_curves, synthetic_trials

BATCH_SIZES = [8, 32, 128, 512, 2048]


@pytest.fixture(scope="module")
def tables():
    """Two optimizers of one workload, with infeasible trials and coarse evaluations; and every analysis table."""
    # Two optimizers with their own scaling curves, a fifth of their trials infeasible.
    shared = dict(noise=0.4, batch_sizes=BATCH_SIZES, eval_every=10, infeasible_fraction=0.2)
    trials = pd.concat(
        [
            synthetic_trials(6, s_min=40.0, b_crit=300.0, seed=1, optimizer="sgd", **shared),
            synthetic_trials(6, s_min=30.0, b_crit=900.0, seed=2, optimizer="nesterov", **shared),
        ],
        ignore_index=True,
    )
    curves = synthetic_curves(trials)
    steps = with_interpolated_steps(best_trials(trials), curves)
    fits, _ = fit_workloads(trials, n_bootstrap=20)
    budget = tuning_budget_table(trials, n_resamples=20)
    return trials, steps, fits, budget


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self.cell.strip())
            self.cell = None


def read_html_tables(path):
    """The tables of a report page as data frames of strings (header row first)."""
    parser = _Tables()
    parser.feed(open(path).read())
    return [pd.DataFrame(rows[1:], columns=rows[0]) for rows in parser.tables]


def raw_steps_to_result(trials, optimizer, batch_size):
    """Straight from the trial rows: the fewest steps of any feasible trial that reached the goal."""
    study = trials[(trials["optimizer"] == optimizer) & (trials["batch_size"] == batch_size)]
    reached = study[(study["status"] == "reached")]
    return reached["steps_to_result"].min(), reached.sort_values(["steps_to_result", "trial_id"]).iloc[0]


def test_summary_numbers_follow_from_the_trials(tables):
    trials, steps, fits, budget = tables
    text = study_summary(steps, fits, budget, "synthetic", 0.9, stopped_at_target=True)
    for optimizer, label in [("sgd", "SGD"), ("nesterov", "Nesterov momentum")]:
        paragraph = next(p for p in text.split("\n\n") if p.startswith(f"**w, {label}**"))
        first, last = raw_steps_to_result(trials, optimizer, 8)[0], raw_steps_to_result(trials, optimizer, 2048)[0]
        assert f"fell from {number(first)} at batch size 8 to {number(last)} at batch size 2048" in paragraph
        assert f"a speed-up of {first / last:.2f}x for 256x the batch size" in paragraph
        assert f"reached at {len(BATCH_SIZES)} of {len(BATCH_SIZES)} batch sizes" in paragraph
        fit = fits.set_index("optimizer").loc[optimizer]
        assert f"B_crit ≈ {number(fit['b_crit'])} [{number(fit['b_crit_lo'])}, {number(fit['b_crit_hi'])}]" in paragraph
    assert "values only show that the goal was met" in text


def test_interpolated_steps_find_the_crossing_within_one_evaluation_interval(tables):
    trials, steps, _, _ = tables
    for _, row in steps.iterrows():
        _, best = raw_steps_to_result(trials, row["optimizer"], row["batch_size"])
        # Synthetic curves fall linearly, so interpolating between evaluations is exact.
        assert row["steps_interpolated"] == pytest.approx(best["crossing"])
        assert 0 <= row["steps_to_result"] - row["steps_interpolated"] <= row["eval_interval"] == 10


def test_report_tables_show_the_best_trial_of_each_study(tables, tmp_path):
    trials, steps, fits, budget = tables
    output = {name: tmp_path / f"{name}.html" for name in ["steps", "metaparameters", "fits", "tuning_budget"]}
    write_report_tables(steps, fits, budget, output, 0.9)
    metaparameters = read_html_tables(output["metaparameters"])[0]
    for _, row in metaparameters.iterrows():
        _, best = raw_steps_to_result(trials, row["optimizer"], int(row["batch size"]))
        assert int(row["best trial"]) == best["trial_id"]
        assert float(row["learning rate"]) == pytest.approx(best["learning_rate"], rel=1e-2)
    shown = read_html_tables(output["steps"])[0]
    assert (shown["infeasible"].astype(int) == steps["n_infeasible"]).all() and steps["n_infeasible"].sum() > 0
    assert "the data give" in read_html_tables(output["fits"])[0]


def test_summary_says_when_the_data_cannot_constrain_a_boundary():
    trials = synthetic_trials(6, steps=lambda b: 1e5 / b, noise=0.02, batch_sizes=BATCH_SIZES)
    fits, _ = fit_workloads(trials, n_bootstrap=20)
    text = study_summary(
        best_trials(trials), fits, tuning_budget_table(trials, n_resamples=5), "s", 0.9, stopped_at_target=False
    )
    assert "maximal useful batch size: beyond the measured batch sizes (> 2048)" in text
    assert "S_min" in text and "extrapolated" in text


def test_variants_are_read_from_the_workload_config():
    def workload(hidden, examples=None, goal=0.4):
        return {
            "dataset": {"name": "mnist1d", "train_examples": examples},
            "model": {"name": "mlp", "hidden": hidden},
            "target": {"metric": "error", "value": goal},
        }

    workloads = {
        "base": workload([64]),
        "wide": workload([256]),
        "half": workload([64], 2000),
        "other_goal": workload([32], goal=0.3),
    }
    assert model_variants(workloads) == {"mnist1d, error goal 0.4": ["base", "wide"]}
    assert list(dataset_size_variants(workloads).values()) == [["base", "half"]]
    assert model_variants({"a": workload([64]), "b": workload([64])}) == {}


def test_provenance_page_holds_config_hash_versions_and_run_times(tmp_path):
    write_parquet(
        synthetic_trials(2, batch_sizes=[8]),
        tmp_path / "trials.parquet",
        {
            "config_hash": "0123abcd",
            "config": json.dumps({"study": "s"}),
            "package_versions": json.dumps({"numpy": "9.9"}),
        },
    )
    benchmark = tmp_path / "benchmarks/tune/s/w/sgd/b8/shard0.tsv"
    benchmark.parent.mkdir(parents=True)
    benchmark.write_text("s\th:m:s\tmax_rss\tcpu_time\n12.5\t0:00:12\t100\t11.0\n")
    page = tmp_path / "provenance.html"
    write_provenance(tmp_path / "trials.parquet", [benchmark, tmp_path / "missing.tsv"], page, str(tmp_path))
    facts = dict(read_html_tables(page)[0].to_numpy())
    assert facts["config hash"] == "0123abcd" and facts["tune jobs benchmarked"] == "1 of 2"
    assert facts["training wall time, all jobs"] in ("12 s", "13 s")  # 12.5 s, rounded
    assert facts["git revision (analysis)"] == "unknown"
    assert facts["training hosts"] == "not recorded (2 trials)"
    assert "9.9" in page.read_text() and "&quot;study&quot;: &quot;s&quot;" in page.read_text()


@pytest.mark.slow
def test_report_builds_from_the_tables_alone(tmp_path, tiny_config):
    """Imported tables (no training): Snakemake runs only the analysis, then its report."""
    rows = []
    for i, (name, workload) in enumerate(tiny_config["workloads"].items()):
        for j, optimizer in enumerate(workload["optimizers"]):
            rows.append(
                synthetic_trials(
                    4,
                    batch_sizes=workload["batch_sizes"],
                    workload=name,
                    optimizer=optimizer,
                    eval_every=5,
                    seed=10 * i + j,
                )
            )
    trials = pd.concat(rows, ignore_index=True)
    curves = synthetic_curves(trials)
    results = tmp_path / "results" / tiny_config["study"]
    # Shard tables as an import writes them (marked imported_by: never tuned here, no fingerprint).
    meta = {"config_hash": "imported", "config": json.dumps(tiny_config), "imported_by": "test"}
    for study in studies(tiny_config):
        for shard in range(shard_count(tiny_config, study.workload)):
            ids = list(shard_trials(tiny_config, shard, study.workload))
            for kind, table in (("trials", trials), ("curves", curves)):
                pick = (table[["workload", "optimizer", "batch_size"]] == list(astuple(study))).all(axis=1)
                write_parquet(
                    table[pick & table["trial_id"].isin(ids)], shard_table(str(results), kind, study, shard), meta
                )
    # The noise-scale run would need data to train on: off, as for any imported study.
    no_noise_scale_config = tmp_path / "no_noise_scale.yaml"
    no_noise_scale_config.write_text("noise_scale: {enabled: false}\n")
    configs = ["--configfile", str(tiny_config_path()), str(no_noise_scale_config)]
    run_snakemake(tmp_path, "--cores", "2", *configs)
    run_snakemake(tmp_path, *configs, "--report", str(results / "report.html"))
    assert not (tmp_path / "logs" / "tune").exists()  # nothing was trained
    summary = (results / "summary.md").read_text()
    name = next(iter(tiny_config["workloads"]))
    smallest = min(tiny_config["workloads"][name]["batch_sizes"])
    optimizer = tiny_config["workloads"][name]["optimizers"][0]
    first = trials[
        (trials["workload"] == name) & (trials["optimizer"] == optimizer) & (trials["batch_size"] == smallest)
    ]
    assert f"fell from {number(first['steps_to_result'].min())} at batch size {smallest}" in summary
    report = (results / "report.html").read_text()
    for figure in [
        "steps_to_result.png",
        "tuning_budget.png",
        "solution_quality.png",
        "learning_rate.png",
        "provenance.html",
    ]:
        assert figure in report
    assert math.isfinite(pd.read_csv(results / "fits.csv")["s_min"].iloc[0])
    # Shareable: the tables and PDFs are in it, every item labelled, no path of this machine.
    for attached in ["fits.csv", "fit_bootstrap.parquet", "tuning_budget.csv", "steps_to_result.pdf"]:
        assert f"filename={attached};" in report, attached
    for label in ['"figure": "data: fits.csv"', '"figure": "steps to result (PDF)"', '"workload": "mnist1d_mlp"']:
        assert label in report, label
    assert str(tmp_path) not in report and str(REPO) not in report


def tiny_config_path():
    from conftest import TINY_CONFIG

    return TINY_CONFIG
