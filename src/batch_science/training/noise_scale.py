"""The gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, Appendix A).

One training run per workload measures squared gradient norms at two batch sizes each step. With
B_small < B_big, these are unbiased:
    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1 / B_small - 1 / B_big)
Each is averaged with an exponential moving average and B_simple is the ratio of the averages (the
ratio of single-step estimates is biased). The prediction is set beside the critical batch size
B_crit fitted to the measured steps to result (analysis/noise_scale.py); it costs one short run,
not a sweep.

The big batch is split into B_big / B_small chunks and the model is applied to all chunks at once
with the weights tiled along the models' trial axis, so one backward pass gives every chunk's
gradient: |G_small|^2 is their mean squared norm and G_big their mean.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from batch_science.config import is_nqm, workload_setting
from batch_science.training.device import configure_tensorflow
from batch_science.training.optimizers import step_scalars, update_weights, zero_state
from batch_science.trials import MOMENTUM_KEYS, MOMENTUM_OPTIMIZERS, OWN_METAPARAMETERS

log = logging.getLogger(__name__)

NOISE_SCALE_COLUMNS = [
    "workload",
    "step",
    "examples",
    "progress",
    "train_cross_entropy",
    "val_cross_entropy",
    "val_error",
    "gradient_norm_sq",
    "trace_sigma",
    "b_simple",
    "b_noise",
]


def unbiased_estimates(norm_sq_small, norm_sq_big, small_batch: int, big_batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Unbiased |G|^2 and tr(Sigma) from squared gradient norms at two batch sizes."""
    norm_sq_small, norm_sq_big = np.asarray(norm_sq_small, float), np.asarray(norm_sq_big, float)
    gradient = (big_batch * norm_sq_big - small_batch * norm_sq_small) / (big_batch - small_batch)
    trace = (norm_sq_small - norm_sq_big) / (1 / small_batch - 1 / big_batch)
    return gradient, trace


def ema(values, decay: float) -> np.ndarray:
    """Bias-corrected exponential moving average (early values are not pulled towards zero)."""
    values = np.asarray(values, float)
    out, average = np.empty_like(values), 0.0
    for t, value in enumerate(values, start=1):
        average = decay * average + (1 - decay) * value
        out[t - 1] = average / (1 - decay**t)
    return out


def settings_for(config: dict, workload: str) -> dict:
    """The study's noise_scale settings with the workload's overrides merged over them."""
    settings = workload_setting(config, workload, "noise_scale")
    if settings["big_batch"] % settings["small_batch"] or settings["big_batch"] <= settings["small_batch"]:
        raise ValueError(
            f"noise_scale of workload {workload}: big_batch {settings['big_batch']} must be a multiple of small_batch "
            f"{settings['small_batch']} above it"
        )
    return settings


def _curve(workload: str, settings: dict, steps, raw_small, raw_big, train_loss, evaluations: dict) -> pd.DataFrame:
    """Smoothed estimates at the evaluated steps."""
    gradient, trace = unbiased_estimates(raw_small, raw_big, settings["small_batch"], settings["big_batch"])
    gradient, trace = ema(gradient, settings["ema_decay"]), ema(trace, settings["ema_decay"])
    rows = []
    for step, (val_ce, val_error) in evaluations.items():
        i = max(step - 1, 0)  # estimates are taken at the step that produced this point's weights
        rows.append(
            {
                "workload": workload,
                "step": step,
                "examples": step * settings["big_batch"],
                "progress": step / steps,
                "train_cross_entropy": float(train_loss[i]),
                "val_cross_entropy": val_ce,
                "val_error": val_error,
                "gradient_norm_sq": float(gradient[i]),
                "trace_sigma": float(trace[i]),
                "b_simple": float(trace[i] / gradient[i]) if gradient[i] > 0 else math.nan,
                "b_noise": math.nan,  # needs the Hessian; known only for the NQM
            }
        )
    return pd.DataFrame(rows, columns=NOISE_SCALE_COLUMNS)


def measure_nqm(workload: str, spec: dict, settings: dict) -> pd.DataFrame:
    """The NQM's noise scale in closed form along its expected trajectory: tr(Sigma) = sum c_i,
    E|G|^2 = sum h_i^2 E theta_i^2 (no sampling, so no smoothing is needed). Also the
    Hessian-weighted B_noise = tr(H Sigma) / G^T H G, which B_simple equals only for isotropic H."""
    from batch_science.training.nqm import MomentRecursion, quadratic_from_config

    quadratic = quadratic_from_config(spec)
    h = quadratic.curvature
    optimizer = settings["optimizer"]
    recursion = MomentRecursion(
        quadratic,
        optimizer,
        settings["big_batch"],
        [settings[MOMENTUM_KEYS[optimizer]]],
        spec.get("preconditioner_power", 0.0),
    )
    rows = []
    for step in range(settings["steps"] + 1):
        if step % settings["eval_every"] == 0 or step == settings["steps"]:
            loss = float(recursion.loss()[0])
            gradient = float((quadratic.curvature**2 * recursion.theta2[0]).sum())
            trace = float(quadratic.noise.sum())
            rows.append(
                {
                    "workload": workload,
                    "step": step,
                    "examples": step * settings["big_batch"],
                    "progress": step / settings["steps"],
                    "train_cross_entropy": loss,
                    "val_cross_entropy": loss,
                    "val_error": math.nan,
                    "gradient_norm_sq": gradient,
                    "trace_sigma": trace,
                    "b_simple": trace / gradient,
                    "b_noise": float((h * quadratic.noise).sum() / (h**3 * recursion.theta2[0]).sum()),
                }
            )
        recursion.step(np.array([settings["learning_rate"]]))
    return pd.DataFrame(rows, columns=NOISE_SCALE_COLUMNS)


def measure(config: dict, workload: str, threads: int = 1) -> pd.DataFrame:
    """One training run of the workload, recording B_simple against training progress."""
    spec = config["workloads"][workload]
    settings = settings_for(config, workload)
    if is_nqm(spec):
        return measure_nqm(workload, spec["nqm"], settings)
    return _measure_tf(workload, spec, settings, config["data_dir"], config["seed"], threads, config.get("config_dir"))


def run_metaparameters(settings: dict) -> dict:
    """The run's metaparameters as a trial's (constant learning rate): its optimizer's own from the
    noise_scale block, momentum 0 for sgd and adam."""
    optimizer = settings["optimizer"]
    momentum = settings["momentum"] if optimizer in MOMENTUM_OPTIMIZERS else 0.0
    own = {key: settings[key] for key in OWN_METAPARAMETERS.get(optimizer, ())}
    return {
        "learning_rate": settings["learning_rate"],
        "momentum": momentum,
        "decay_steps": 0.0,
        "end_factor": 1.0,
        **own,
    }


def make_train_step(model, chunks: int, optimizer: str, metaparameters: dict):
    """Compiled step: update on the big batch x [chunks, small, ...] at `step` (`metaparameters` as
    run_metaparameters gives them); return the squared norms too."""
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def train_step(weights, state, step, x, y):
        tiled = [tf.repeat(w, chunks, axis=0) for w in weights]  # one copy per chunk: per-chunk gradients
        with tf.GradientTape() as tape:
            tape.watch(tiled)
            logits = model.apply(tiled, x, shared=False)  # [chunks, small, classes]
            per_label = tf.nn.sparse_softmax_cross_entropy_with_logits(
                y, logits
            )  # [chunks, small] or, per token, [chunks, small, length]
            chunk_loss = tf.reduce_mean(per_label, axis=list(range(1, len(per_label.shape))))
            total = tf.reduce_sum(chunk_loss)
        grads = tape.gradient(total, tiled)
        norm_sq_small = tf.reduce_mean(
            tf.add_n([tf.reduce_sum(tf.reshape(g * g, [chunks, -1]), axis=1) for g in grads])
        )
        big_grads = [tf.reduce_mean(g, axis=0, keepdims=True) for g in grads]
        norm_sq_big = tf.add_n([tf.reduce_sum(g * g) for g in big_grads])
        hyper = {key: tf.constant(value, weights[0].dtype) for key, value in metaparameters.items()}
        scalars = step_scalars(optimizer, hyper, tf.cast(step, weights[0].dtype), xp=tf)
        weights, state = update_weights(optimizer, weights, state, big_grads, scalars, xp=tf)
        return weights, state, tf.reduce_mean(chunk_loss), norm_sq_small, norm_sq_big

    return train_step


def _measure_tf(
    workload: str, spec: dict, settings: dict, data_dir: str, seed: int, threads: int, config_dir: str | None = None
) -> pd.DataFrame:
    configure_tensorflow(threads)
    import tensorflow as tf

    from batch_science.data.load import load
    from batch_science.data.streamed import StreamedData
    from batch_science.models.registry import get_model

    arrays = load(spec["dataset"], data_dir, config_dir)
    if isinstance(arrays, StreamedData):
        raise ValueError(
            f"workload {workload}: its dataset is streamed, the noise-scale run needs it in memory; set its "
            f"noise_scale: {{enabled: false}}"
        )
    model = get_model(spec["model"], config_dir)
    small, big = settings["small_batch"], settings["big_batch"]
    chunks = big // small
    optimizer = settings["optimizer"]
    weights = [tf.constant(w[None], tf.float32) for w in model.init(seed, arrays.x_train.shape[1:], arrays.num_classes)]
    state = zero_state(optimizer, weights, tf.zeros_like)
    x_validation = tf.constant(arrays.x_validation, tf.float32)
    y_validation = tf.constant(arrays.y_validation, tf.int32)

    train_step = make_train_step(model, chunks, optimizer, run_metaparameters(settings))

    @tf.function(jit_compile=True)
    def evaluate(weights):
        logits = model.apply(weights, x_validation, shared=True)[0]
        ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y_validation, logits))
        error = tf.reduce_mean(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) != y_validation, tf.float32))
        return ce, error

    rng = np.random.default_rng(seed)
    n_examples, input_shape = len(arrays.x_train), arrays.x_train.shape[1:]
    steps = settings["steps"]
    raw_small, raw_big, train_loss = np.zeros(steps), np.zeros(steps), np.zeros(steps)
    evaluations = {}
    for step in range(steps + 1):
        if step % settings["eval_every"] == 0 or step == steps:
            evaluations[step] = tuple(float(v) for v in evaluate(weights))
        if step == steps:
            break
        index = rng.integers(0, n_examples, big)  # with replacement, as the engine samples
        x = arrays.x_train[index].reshape(chunks, small, *input_shape).astype(np.float32)
        y = arrays.y_train[index].reshape(chunks, small)
        weights, state, loss, norm_small, norm_big = train_step(weights, state, tf.constant(step), x, y)
        raw_small[step], raw_big[step], train_loss[step] = float(norm_small), float(norm_big), float(loss)
        if not math.isfinite(train_loss[step]):
            raise ValueError(f"noise_scale run of {workload} diverged at step {step}: lower noise_scale.learning_rate")
    log.info("%s: noise-scale run of %d steps done", workload, steps)
    return _curve(workload, settings, steps, raw_small, raw_big, train_loss, evaluations)
