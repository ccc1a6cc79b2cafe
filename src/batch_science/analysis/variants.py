"""Workload variants a study config defines: model variants and dataset-size variants.

* model variants: workloads on the same data (dataset and its size) with the same goal whose
  models differ (another family, or the same family with other widths or depths);
* dataset-size variants: workloads with the same model and goal on the same dataset, trained on
  different numbers of examples (dataset.train_examples; null means the whole training set).

Only groups of two or more workloads count. Keys are readable labels for titles and files.
"""

from __future__ import annotations

import json

from batch_science.config import dataset_name, model_name

MODEL_KEYS = ("name", "keras")  # what names a model; the other keys of its block are its sizes


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _groups(workloads: dict, key) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name in sorted(workloads):
        groups.setdefault(key(workloads[name]), []).append(name)
    return {label: names for label, names in groups.items() if len(names) > 1}


def model_variants(workloads: dict) -> dict[str, list[str]]:
    """Workloads that differ only in their model, by the dataset they share."""

    def key(w):
        size = w["dataset"].get("train_examples")
        return dataset_name(w["dataset"]) + (f" ({size} examples)" if size else "") + _goal(w)

    groups = _groups(workloads, key)
    return {k: v for k, v in groups.items() if len({_canonical(workloads[n]["model"]) for n in v}) > 1}


def dataset_size_variants(workloads: dict) -> dict[str, list[str]]:
    """Workloads that differ only in the number of training examples, by the model they share."""

    def key(w):
        model = ", ".join(f"{k}={v}" for k, v in sorted(w["model"].items()) if k not in MODEL_KEYS)
        return f"{dataset_name(w['dataset'])}, {model_name(w['model'])}" + (f" ({model})" if model else "") + _goal(w)

    groups = _groups(workloads, key)
    # Same model and data but every train_examples equal is not a dataset-size comparison.
    return {
        k: v
        for k, v in groups.items()
        if len({_canonical(workloads[n]["dataset"].get("train_examples")) for n in v}) > 1
    }


def _goal(workload: dict) -> str:
    target = workload["target"]
    return f", {target['metric']} goal {target['value']}"


def variant_groups(workloads: dict) -> dict[str, dict[str, list[str]]]:
    """Both kinds, by kind name as used in figure file names."""
    return {"model": model_variants(workloads), "dataset_size": dataset_size_variants(workloads)}


def training_examples(workload: dict) -> str:
    size = workload["dataset"].get("train_examples")
    return "all examples" if size is None else f"{size} examples"


def model_description(workload: dict) -> str:
    extras = ", ".join(f"{k}={v}" for k, v in sorted(workload["model"].items()) if k not in MODEL_KEYS)
    return model_name(workload["model"]) + (f" ({extras})" if extras else "")
