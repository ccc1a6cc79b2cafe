"""Study configuration: load, validate against the JSON schema, expand into studies and shards.

Every error is one line that names the offending key, raised before any job runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from batch_science.trials import MOMENTUM_OPTIMIZERS, OPTIMIZERS, OWN_METAPARAMETERS, Target

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
NQM_DATASET = "nqm"  # the noisy quadratic model: a workload computed exactly, with no data or model


class ConfigError(ValueError):
    """A config that cannot describe a study; the message names the key."""


@dataclass(frozen=True)
class Study:
    """One workload, optimizer and batch size: one metaparameter search."""

    workload: str
    optimizer: str
    batch_size: int

    @property
    def path(self) -> str:
        return f"{self.workload}/{self.optimizer}/b{self.batch_size}"


def load_schema() -> dict:
    """The config schema, with the optimizer names of the trial contract as its optimizer enum."""
    with open(SCHEMA_PATH) as f:
        schema = yaml.safe_load(f)
    schema["$defs"]["optimizer"]["enum"] = list(OPTIMIZERS)
    return schema


def is_nqm(workload: dict) -> bool:
    """Whether a workload's config block is the noisy quadratic model (computed exactly, no devices)."""
    return workload["dataset"].get("name") == NQM_DATASET


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _short_message(error: jsonschema.ValidationError) -> str:
    # jsonschema repeats the whole offending object in some messages; one line is enough.
    message = " ".join(error.message.split())
    return message if len(message) <= 160 else message[:157] + "..."


def _with_defaults(validator_class):
    """A validator that also fills in schema defaults, as Snakemake's validate() does."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


@dataclass(frozen=True)
class Range:
    """An interval of allowed values; each end included or not (shown as [0, 1), (0, inf), ...)."""

    low: float
    high: float = math.inf
    low_included: bool = True
    high_included: bool = False

    def __contains__(self, value) -> bool:
        above = value >= self.low if self.low_included else value > self.low
        below = value <= self.high if self.high_included else value < self.high
        return bool(above and below)

    def __str__(self) -> str:
        high = "inf" if self.high == math.inf else f"{self.high:g}"
        return f"{'[' if self.low_included else '('}{self.low:g}, {high}{']' if self.high_included else ')'}"


# Allowed values of each searched metaparameter, whether fixed, a range (both ends) or a list;
# an optimizer's own keys are one row each.
PARAMETER_RANGES = {
    "learning_rate": Range(0, low_included=False),
    "momentum": Range(0, 1),  # 1 divides by zero in the effective learning rate; above it diverges
    "decay_fraction": Range(0, 1, low_included=False, high_included=True),
    "end_factor": Range(0, 1, low_included=False, high_included=True),
    "label_smoothing": Range(0, 1),
    "beta1": Range(0, 1),  # Adam's decay rates: 1 would never update its moment estimates
    "beta2": Range(0, 1),
    "epsilon": Range(0, low_included=False),
}
# Goals a validation metric can be asked to beat (a goal outside never or always counts as met).
TARGET_RANGES = {
    "error": Range(0, 1, low_included=False),
    "cross_entropy": Range(0, low_included=False),
    "average_precision": Range(0, 1, low_included=False),  # maximized; only in imported release studies
}


def validate_config(config: dict) -> dict:
    """Return a validated copy of `config` with defaults filled in; raise ConfigError naming the key.

    The rules of the config alone; what needs the model registry is checked on top of this by
    tuning.study_config.check_study, the one entry point of the pipeline and the tools."""
    config = copy.deepcopy(config)
    schema = load_schema()
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(f"config key {_key_path(error)}: {_short_message(error)}")
    _derive_nqm_workloads(config)
    _check_consistency(config)
    return config


def _derive_nqm_workloads(config: dict) -> None:
    """A noisy-quadratic workload's model and target follow from its nqm block (idempotent)."""
    for name, workload in config["workloads"].items():
        key = f"workloads.{name}"
        if not is_nqm(workload):
            if "nqm" in workload:
                raise ConfigError(
                    f"config key {key}.nqm: only for dataset nqm, not '{dataset_name(workload['dataset'])}'"
                )
            continue
        spec = workload["nqm"]
        # The analysis compares the cross-entropy columns; the NQM writes its expected loss there.
        target = {"metric": "cross_entropy", "value": float(spec["target_loss"]), "direction": "minimize"}
        if workload.setdefault("target", target) != target:
            raise ConfigError(f"config key {key}.target: set by nqm.target_loss for dataset nqm; leave it out")
        if workload.setdefault("model", {"name": NQM_DATASET}) != {"name": NQM_DATASET}:
            raise ConfigError(f"config key {key}.model: dataset nqm has no model; leave it out")


def _check_consistency(config: dict) -> None:
    """Rules the schema cannot say: cross references between keys."""
    spaces = config["search_spaces"]
    for name, workload in config["workloads"].items():
        key = f"workloads.{name}"
        for optimizer in workload["optimizers"]:
            if optimizer not in spaces:
                raise ConfigError(
                    f"config key {key}.optimizers: no search_spaces.{optimizer} for optimizer '{optimizer}'"
                )
        if workload["dataset"].get("train_examples") and workload["dataset"].get("train_fraction"):
            raise ConfigError(
                f"config key {key}.dataset.train_fraction: give train_examples or train_fraction, not both"
            )
        for steps_key in ("step_budget", "eval_every"):
            spec = workload[steps_key]
            if isinstance(spec, dict) and "examples" not in spec:
                missing = [b for b in workload["batch_sizes"] if str(b) not in spec]
                if missing:
                    raise ConfigError(f"config key {key}.{steps_key}: no entry for batch sizes {missing}")
    if config["study"] in (".", ".."):
        raise ConfigError(f"config key study: '{config['study']}' is not a folder name (letters, digits, _ . -)")
    for name, workload in config["workloads"].items():
        _check_ranges(f"workloads.{name}.search_space", workload.get("search_space", {}))
        _check_target(f"workloads.{name}.target", workload["target"])
        _check_steps(f"workloads.{name}", workload)
    parallel = config["data_parallel"]
    replicas = parallel["devices"] * parallel["nodes"]
    for name, workload in config["workloads"].items():
        for batch_size in workload["batch_sizes"]:
            if data_parallel_for(config, Study(name, workload["optimizers"][0], batch_size)) and batch_size % replicas:
                raise ConfigError(
                    f"config key data_parallel: batch size {batch_size} of workload {name} does not split evenly "
                    f"over {replicas} devices (devices x nodes)"
                )
    for name, workload in config["workloads"].items():
        _check_optimizer_extras(config, name, workload)
    for optimizer, space in spaces.items():
        key = f"search_spaces.{optimizer}"
        if optimizer in MOMENTUM_OPTIMIZERS and "momentum" not in space:
            raise ConfigError(f"config key {key}.momentum: required for optimizer '{optimizer}'")
        for needed in OWN_METAPARAMETERS.get(optimizer, ()):
            if needed not in space:
                raise ConfigError(f"config key {key}.{needed}: required for optimizer '{optimizer}'")
        if space.get("schedule") == "linear_decay":
            for needed in ("decay_fraction", "end_factor"):
                if needed not in space:
                    raise ConfigError(f"config key {key}.{needed}: required by schedule linear_decay")
        _check_ranges(key, space)
        for param, spec in space.items():
            if isinstance(spec, dict) and "min" in spec and spec["min"] > spec["max"]:
                raise ConfigError(f"config key {key}.{param}: min {spec['min']} is above max {spec['max']}")
            if isinstance(spec, dict) and spec.get("scale") == "log" and spec["min"] <= 0:
                raise ConfigError(f"config key {key}.{param}: log scale needs min > 0, got {spec['min']}")
            if isinstance(spec, dict) and spec.get("scale") == "reverse_log" and spec["max"] >= 1:
                raise ConfigError(f"config key {key}.{param}: reverse_log scale needs max < 1, got {spec['max']}")


def _check_optimizer_extras(config: dict, name: str, workload: dict) -> None:
    """What an optimizer with metaparameters of its own (Adam) needs beyond its search space: its
    metaparameters in the noise-scale run that trains with it, and on the NQM a preconditioner."""
    key = f"workloads.{name}"
    settings = workload_setting(config, name, "noise_scale")
    if settings["enabled"]:
        for needed in OWN_METAPARAMETERS.get(settings["optimizer"], ()):
            if needed not in settings:
                raise ConfigError(
                    f"config key noise_scale.{needed}: required for noise_scale.optimizer "
                    f"'{settings['optimizer']}' (workload {name})"
                )
    uses_adam = "adam" in workload["optimizers"] or (settings["enabled"] and settings["optimizer"] == "adam")
    if is_nqm(workload) and uses_adam and "preconditioner_power" not in workload["nqm"]:
        raise ConfigError(
            f"config key {key}.nqm.preconditioner_power: required for optimizer 'adam' on the NQM, which models Adam "
            "as preconditioning by H^power (0.5: Adam's square root)"
        )


def _parameter_values(spec) -> list:
    """The values a parameter spec can take at its ends: a number, a range's min and max, or a list."""
    if not isinstance(spec, dict):
        return [spec]
    return list(spec["values"]) if "values" in spec else [spec["min"], spec["max"]]


def _check_ranges(key: str, space: dict) -> None:
    """Every metaparameter of a search space (or a workload's extras) inside PARAMETER_RANGES."""
    for param, allowed in PARAMETER_RANGES.items():
        if param in space:
            bad = [value for value in _parameter_values(space[param]) if value not in allowed]
            if bad:
                raise ConfigError(f"config key {key}.{param}: {bad[0]:g} is outside the allowed {allowed}")


def _check_target(key: str, target: dict) -> None:
    allowed = TARGET_RANGES[target["metric"]]
    if target["value"] not in allowed:
        raise ConfigError(
            f"config key {key}.value: {target['value']:g} is outside the range of {target['metric']}, {allowed}"
        )


def _check_steps(key: str, workload: dict) -> None:
    """min_steps at most max_steps, and an evaluation interval within the step budget at every batch size."""
    for steps_key in ("step_budget", "eval_every"):
        spec = workload[steps_key]
        if isinstance(spec, dict) and spec.get("min_steps", 1) > spec.get("max_steps", math.inf):
            raise ConfigError(
                f"config key {key}.{steps_key}.min_steps: {spec['min_steps']} is above max_steps {spec['max_steps']}"
            )
    for batch_size in workload["batch_sizes"]:
        budget, interval = (steps_for(workload[k], batch_size) for k in ("step_budget", "eval_every"))
        if interval > budget:
            raise ConfigError(
                f"config key {key}.eval_every: {interval} steps at batch size {batch_size} is above the step "
                f"budget of {budget} (allowed: 1 to step_budget)"
            )


def read_config(path: str | Path, overrides: dict | None = None) -> dict:
    """A config file as a dict (not yet validated), with `overrides` set over its top-level keys."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path}: not found")
    try:
        with open(path) as f:
            config = yaml.safe_load(f) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path}: not valid YAML ({' '.join(str(error).split())})") from None
    config.update(overrides or {})
    return config


# Settings of how a run is carried out, not of what it computes: they leave the hash alone.
RUNTIME_KEYS = ("checkpoint_minutes", "config_dir")


def config_hash(config: dict) -> str:
    """Short stable hash of the validated config (less RUNTIME_KEYS), recorded with every result."""
    scientific = {key: value for key, value in config.items() if key not in RUNTIME_KEYS}
    canonical = json.dumps(scientific, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def steps_for(spec, batch_size: int) -> int:
    """Resolve a batch-size-dependent number of steps (see $defs/steps in the schema)."""
    if isinstance(spec, int):
        return spec
    if "examples" in spec:
        steps = max(math.ceil(spec["examples"] / batch_size), spec.get("min_steps", 1))
        return min(steps, spec["max_steps"]) if "max_steps" in spec else steps
    return int(spec[str(batch_size)])


def data_parallel_for(config: dict, study: Study) -> dict | None:
    """The data_parallel block if this study trains its trials data-parallel, else None (the engine)."""
    spec = config["data_parallel"]
    if spec["min_batch_size"] is None or study.batch_size < spec["min_batch_size"]:
        return None
    if is_nqm(config["workloads"][study.workload]):  # computed exactly, no devices
        return None
    return spec


def run_settings(config: dict, workload: str) -> dict:
    """How every trainer judges and stops a workload's trials: its goal, the divergence factor and
    whether trials stop at the goal (the keyword arguments of Engine.run and its peers)."""
    return {
        "target": Target(**config["workloads"][workload]["target"]),
        "divergence_factor": config["divergence_factor"],
        "stop_at_target": config["stop_at_target"],
    }


def studies(config: dict) -> list[Study]:
    return [
        Study(name, optimizer, batch_size)
        for name, workload in config["workloads"].items()
        for optimizer in workload["optimizers"]
        for batch_size in workload["batch_sizes"]
    ]


def merged(study_wide, own):
    """A study-wide setting with a workload's own value over it: key by key for a block, else whole."""
    if isinstance(study_wide, dict):
        return {**study_wide, **(own or {})}
    return study_wide if own is None else own


def workload_setting(config: dict, workload: str, key: str):
    """The top-level setting `key` as it applies to a workload (trials, trials_per_job, noise_scale, prune):
    the workload's own `key` merged over the study's."""
    return merged(config[key], config["workloads"][workload].get(key))


def search_space(config: dict, workload: str, optimizer: str) -> dict:
    """The optimizer's search space with the workload's `search_space` extras merged over it."""
    return merged(config["search_spaces"][optimizer], config["workloads"][workload].get("search_space"))


def trial_counts(config: dict, workload: str) -> tuple[int, int]:
    """Trials per study and per tune job of a workload."""
    return workload_setting(config, workload, "trials"), workload_setting(config, workload, "trials_per_job")


def shard_count(config: dict, workload: str) -> int:
    trials, per_job = trial_counts(config, workload)
    return math.ceil(trials / per_job)


def shard_trials(config: dict, shard: int, workload: str) -> range:
    """Trial ids of one tune job of a workload; the union over its shards is 0..trials-1."""
    trials, per_job = trial_counts(config, workload)
    start = shard * per_job
    return range(start, min(start + per_job, trials))


def stable_seed(*parts) -> int:
    """A 31-bit seed from any parts, the same on every machine and Python run."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def model_name(spec: dict) -> str:
    """A model block's name in tables and figures: the registered name, or the Keras import path."""
    return spec.get("name") or spec["keras"]


DATASET_SOURCES = ("name", "builder", "npz")  # a dataset block names its data by exactly one of these


def dataset_name(spec: dict) -> str:
    """A dataset block's name in tables, logs and its prepared-data flag file: the tfds name, the
    builder's import path (":" as "."), or "npz." and the file's path as written."""
    if "builder" in spec:
        return spec["builder"].replace(":", ".")
    if "npz" in spec:
        return "npz." + re.sub(r"[^A-Za-z0-9_.-]", "_", spec["npz"])
    return spec["name"]


def dataset_block(config: dict, name: str) -> dict:
    """The dataset block `dataset_name` calls `name` (what the prepare_data job prepares); a bare
    tfds name where no workload's block has it."""
    blocks = [w["dataset"] for w in config["workloads"].values() if not is_nqm(w)]
    return next((block for block in blocks if dataset_name(block) == name), {"name": name})
