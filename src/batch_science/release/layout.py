"""The paper's data release layout (google-research/batch_science README) and how its names map to ours.

    <dataset>/<model>/<optimizer>/<batch_size>/study.json
    <dataset>/<model>/<optimizer>/<batch_size>/<trial_id>/metadata.json
    <dataset>/<model>/<optimizer>/<batch_size>/<trial_id>/measurements.csv

A few workloads sit one folder deeper (`mnist_subsets/mnist_13750/...`). importer.py reads a
release into this project's trial and curve tables, exporter.py writes our tables in this layout.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

from batch_science.trials import INFEASIBLE

# Our optimizer names <-> the release's.
OPTIMIZER_NAMES = {"sgd": "sgd", "momentum": "momentum", "nesterov": "nesterov_momentum"}
RELEASE_OPTIMIZERS = {release: ours for ours, release in OPTIMIZER_NAMES.items()}
# Release measurement columns <-> our curve columns; any other column is kept under its own name.
MEASUREMENT_COLUMNS = {
    "train/cross_entropy_error": "train_cross_entropy",
    "val/cross_entropy_error": "val_cross_entropy",
    "val/classification_error": "val_error",
    "val/average_precision": "val_average_precision",  # Open Images
}
RELEASE_MEASUREMENTS = {ours: release for release, ours in MEASUREMENT_COLUMNS.items()}
# Release metaparameter names <-> our trial columns, with the value a trial has when it is not searched.
PARAMETERS = {
    "learning_rate": ("learning_rate", None),
    "momentum": ("momentum", 0.0),
    "learning_rate_decay_steps": ("decay_steps", 0),
    "end_learning_rate_factor": ("end_factor", 1.0),
    "label_smoothing": ("label_smoothing", 0.0),
}
RELEASE_COLUMNS = ["release_path", "release_study", "release_metadata", "release_measurement_columns"]
# Goals of the paper's Figure 1 by release dataset folder, then (dataset, model) (PAPER.md,
# "Goals used for the paper's Figure 1"); the solution-quality studies (solution_quality/mnist,
# solution_quality/fashion_mnist) take their dataset's goal. Others must be given with --target.
PAPER_TARGETS = {
    "mnist": ("error", 0.01),
    "fashion_mnist": ("error", 0.1),
    "cifar_10": ("error", 0.3),
    ("imagenet", "resnet_50"): ("error", 0.25),
    ("imagenet", "vgg_11"): ("error", 0.35),
    ("open_images_v4", "resnet_50"): ("average_precision", 0.31, "maximize"),
    "lm1b": ("cross_entropy", 3.9),
    "common_crawl": ("cross_entropy", 3.9),
}


class ReleaseError(ValueError):
    """A release folder or table that cannot be read or written; the message names the path."""


@dataclass
class ReleaseTables:
    trials: pd.DataFrame
    curves: pd.DataFrame
    problems: list[str] = field(default_factory=list)  # "path: reason", one per study left out
    incomplete: dict[str, int] = field(default_factory=dict)  # study path -> INCOMPLETE trials left out
    skipped_trials: list[str] = field(default_factory=list)  # "trial path: reason", one per trial left out
    notes: list[str] = field(default_factory=list)  # "path: what was tolerated", e.g. repeated rows dropped

    def summary(self) -> str:
        """Every study and trial left out with its reason, and what was tolerated, as Markdown."""
        complete = int((self.trials["status"] != INFEASIBLE).sum()) if len(self.trials) else 0
        studies = len(self.trials.drop_duplicates(["workload", "optimizer", "batch_size"])) if len(self.trials) else 0
        lines = [
            f"Imported {studies} studies: {complete} COMPLETE and {len(self.trials) - complete} INFEASIBLE trials.",
            "",
        ]
        for title, items in (
            ("Studies left out", self.problems),
            ("Trials left out", self.skipped_trials),
            ("Tolerated", self.notes),
        ):
            lines += [f"## {title}: {len(items)}", "", *(f"- {item}" for item in items), *([""] if items else [])]
        return "\n".join(lines)


def search_space_to_parameter_configs(space: dict, step_budget: int) -> dict:
    """A config search space (after search.study_space) as the release's parameter_configs."""
    configs = {}
    scales = {"linear": "LINEAR_SCALE", "log": "LOG_SCALE", "reverse_log": "REVERSE_LOG_SCALE"}
    names = {
        "learning_rate": "learning_rate",
        "momentum": "momentum",
        "end_factor": "end_learning_rate_factor",
        "label_smoothing": "label_smoothing",
    }
    for ours, release in names.items():
        spec = space.get(ours)
        if isinstance(spec, dict) and "values" in spec:
            configs[release] = {"feasible_points": [float(v) for v in spec["values"]], "type": "DISCRETE"}
        elif isinstance(spec, dict) and "min" in spec:
            configs[release] = {
                "max_value": spec["max"],
                "min_value": spec["min"],
                "scale": scales[spec.get("scale", "linear")],
                "type": "DOUBLE",
            }
    fraction = space.get("decay_fraction")
    if isinstance(fraction, dict) and "min" in fraction and space.get("schedule") == "linear_decay":
        configs["learning_rate_decay_steps"] = {
            "max_value": math.ceil(fraction["max"] * step_budget),
            "min_value": math.ceil(fraction["min"] * step_budget),
            "scale": "",
            "type": "INTEGER",
        }
    return configs


def parameter_configs_to_search_space(configs: dict, step_budget: int) -> dict:
    """The release's parameter_configs as a config search space (the inverse of the function above)."""
    scales = {"LINEAR_SCALE": "linear", "LOG_SCALE": "log", "REVERSE_LOG_SCALE": "reverse_log", "": "linear"}
    names = {
        "learning_rate": "learning_rate",
        "momentum": "momentum",
        "end_learning_rate_factor": "end_factor",
        "label_smoothing": "label_smoothing",
    }
    space: dict = {}
    for release, ours in names.items():
        spec = configs.get(release)
        if not spec:
            continue
        if spec.get("type") == "DISCRETE":
            space[ours] = {"values": [float(v) for v in spec["feasible_points"]]}
        else:
            space[ours] = {
                "min": float(spec["min_value"]),
                "max": float(spec["max_value"]),
                "scale": scales[spec.get("scale", "")],
            }
    decay = configs.get("learning_rate_decay_steps")
    if decay and step_budget > 0:
        space["schedule"] = "linear_decay"
        space["decay_fraction"] = {"min": decay["min_value"] / step_budget, "max": decay["max_value"] / step_budget}
        space.setdefault("end_factor", 1.0)
    return space


RELEASE_MODELS = {
    "simple_cnn_base": {"name": "simple_cnn"},
    "simple_cnn_narrow": {"name": "simple_cnn", "filters": [16, 32], "dense": 512},
    "simple_cnn_wide": {"name": "simple_cnn", "filters": [64, 128], "dense": 2048},
    "resnet_8": {"name": "resnet_8"},
    "resnet_50": {"name": "resnet_50"},
    "vgg_11": {"name": "vgg_11"},
    "lstm": {"name": "lstm_lm"},
    "transformer_base": {"name": "transformer_lm"},
}


def release_model_spec(model: str) -> dict:
    """Our model config block for a release model name (fc_W_W_W -> fully_connected)."""
    if re.fullmatch(r"fc(_\d+)+", model):
        widths = [int(w) for w in model.split("_")[1:]]
        if len(set(widths)) == 1:
            return {"name": "fully_connected", "depth": len(widths), "width": widths[0]}
        return {"name": "mlp", "hidden": widths}
    if model.startswith("transformer_"):
        return {"name": "transformer_lm", "size": model.removeprefix("transformer_")}
    return RELEASE_MODELS.get(model, {"name": model})
