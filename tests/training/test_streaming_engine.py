"""Datasets larger than memory: streamed batches give the same trials as device-resident ones."""

import logging

import numpy as np
import pytest

from batch_science.data import streamed as streaming
from batch_science.data import tfds_access
from batch_science.data.arrays import Arrays
from batch_science.data.load import load, prepare
from batch_science.models.trial_axis import Mlp
from batch_science.training import streaming_engine
from batch_science.training.engine import Engine, host_batch_indices
from batch_science.training.streaming_engine import StreamingEngine
from batch_science.trials import Target

TARGET = Target("error", 0.5)
TINY = {"name": "tiny_images", "image_size": 8}


@pytest.fixture(scope="module")
def tiny_images_dir(tmp_path_factory):
    """The tiny image dataset prepared as array_record through data.prepare and a real tfds builder."""
    import tiny_images  # noqa: F401  registers the builder

    data_dir = tmp_path_factory.mktemp("tfds_images")
    prepare("tiny_images", str(data_dir))
    return str(data_dir)


def make_trials(n=5, budget=24, eval_every=10):
    rates = [0.01, 0.1, 0.5, 3.0, 300.0]
    return [
        {
            "trial_id": i,
            "seed": 500 + i,
            "learning_rate": rates[i % len(rates)],
            "momentum": 0.9,
            "decay_steps": 20,
            "end_factor": 0.1,
            "label_smoothing": 0.1 * (i % 2),
            "step_budget": budget,
            "eval_every": eval_every,
        }
        for i in range(n)
    ]


def run_both(spec, data_dir, monkeypatch, eval_batch_size=7, model=None):
    """Outcomes in memory and streamed, with chunks of 3 steps (interval of 10: chunks end mid-interval)."""
    model = model or Mlp((16,))
    in_memory = load({**spec, "streaming": False}, data_dir)
    streamed = load({**spec, "streaming": True}, data_dir)
    assert isinstance(in_memory, Arrays) and isinstance(streamed, streaming.StreamedData)
    step_bytes = 2 * 8 * int(np.prod(streamed.input_shape)) * 4
    monkeypatch.setattr(streaming_engine, "CHUNK_BYTES", 3 * step_bytes)
    trials = make_trials()
    reference = Engine(model, in_memory, "nesterov", 8, "float64", eval_batch_size).run(trials, TARGET, group_size=2)
    engine = StreamingEngine(model, streamed, "nesterov", 8, "float64", eval_batch_size)
    assert engine.chunk_steps(2) == 3
    return reference, engine.run(trials, TARGET, group_size=2), in_memory, streamed


def assert_same_trials(reference, outcomes):
    assert len({o.status for o in reference}) > 1, "the trials should end differently"
    for a, b in zip(reference, outcomes):
        assert (b.status, b.steps_to_result, b.final_step, b.best_step) == (
            a.status,
            a.steps_to_result,
            a.final_step,
            a.best_step,
        )
        assert b.curve == a.curve  # float64, every point to the bit (nan compares unequal: none expected)


def test_streamed_images_train_exactly_as_in_memory_in_float64(tiny_images_dir, monkeypatch):
    """Resized, cropped and standardised images of a class subset of a training subset."""
    reference, outcomes, in_memory, streamed = run_both(
        {**TINY, "classes": 2, "train_fraction": 0.9}, tiny_images_dir, monkeypatch
    )
    assert streamed.num_classes == 2 and streamed.n_train == len(in_memory.y_train) < 96
    assert_same_trials(reference, outcomes)
    # The streamed reads are the in-memory arrays: resized, cropped and standardised alike.
    x, y = streamed.read(streamed.train_records, np.array([5, 0, 5]))
    np.testing.assert_array_equal(x, in_memory.x_train[[5, 0, 5]])
    np.testing.assert_array_equal(y, in_memory.y_train[[5, 0, 5]])
    assert x.shape == (3, 8, 8, 3)


def test_streamed_batch_norm_model_evaluates_with_the_same_precise_statistics(tiny_images_dir, monkeypatch):
    """ResNet-8: evaluation normalises with statistics of the same fixed training examples on both paths."""
    from batch_science.models.registry import get_model

    model = get_model({"name": "resnet_8", "widths": [4, 4, 4]})
    reference, outcomes, _, _ = run_both(TINY, tiny_images_dir, monkeypatch, model=model)
    for a, b in zip(reference, outcomes):
        assert (b.status, b.final_step) == (a.status, a.final_step)
        for point_a, point_b in zip(a.curve, b.curve):
            assert point_b["val_cross_entropy"] == pytest.approx(point_a["val_cross_entropy"], rel=1e-9, nan_ok=True)


def test_streamed_raw_tensors_train_exactly_as_in_memory(mnist1d_data_dir, monkeypatch):
    spec = {"name": "mnist1d", "train_examples": 2000}
    reference, outcomes, _, streamed = run_both(spec, mnist1d_data_dir, monkeypatch, eval_batch_size=700)
    assert streamed.n_train == 2000 and streamed.mean is None
    assert_same_trials(reference, outcomes)


def test_host_batch_indices_equal_the_device_hash():
    import tensorflow as tf

    from batch_science.training.engine import batch_indices

    rng = np.random.default_rng(0)
    seeds = np.concatenate([[0, 1, 2**31 - 1], rng.integers(0, 2**31, size=20)])
    steps = np.concatenate([[0, 2**31 - 1, 600_000], rng.integers(0, 2**24, size=20)])
    for batch_size, n_examples in ((1, 7), (256, 1_281_167), (33, 16000)):
        device = batch_indices(tf, tf.constant(seeds), tf.constant(steps, tf.int32), batch_size, n_examples).numpy()
        np.testing.assert_array_equal(host_batch_indices(seeds, steps, batch_size, n_examples), device)


def test_streaming_is_decided_from_the_config_and_logged(tiny_images_dir, caplog):
    builder = tfds_access.builder("tiny_images", tiny_images_dir)
    size = (96 + 24) * 8 * 8 * 3 * 4 / 1e9
    assert streaming.dataset_gigabytes(TINY, builder) == pytest.approx(size)
    caplog.set_level(logging.INFO, logger="batch_science.data.streamed")
    assert streaming.should_stream({**TINY, "in_memory_limit_gb": size / 2}, builder)
    assert "over dataset.in_memory_limit_gb" in caplog.text and "streamed from disk" in caplog.text
    caplog.clear()
    assert not streaming.should_stream(TINY, builder)  # auto, default limit
    assert "within dataset.in_memory_limit_gb 16" in caplog.text and "held in memory" in caplog.text
    assert streaming.should_stream({**TINY, "streaming": True, "in_memory_limit_gb": 1e6}, builder)
    assert not streaming.should_stream({**TINY, "streaming": False, "in_memory_limit_gb": 1e-9}, builder)
    assert "(dataset.streaming: false)" in caplog.text


def test_streaming_keys_are_validated(tiny_config):
    import copy

    from batch_science.config import ConfigError
    from batch_science.tuning.study_config import check_study

    config = copy.deepcopy(tiny_config)
    workload = next(iter(config["workloads"].values()))
    workload["dataset"]["streaming"] = "sometimes"
    with pytest.raises(ConfigError, match=r"config key workloads\.\w+\.dataset\.streaming"):
        check_study(config)
    workload["dataset"].update(streaming="auto", in_memory_limit_gb=0)
    with pytest.raises(ConfigError, match=r"config key workloads\.\w+\.dataset\.in_memory_limit_gb"):
        check_study(config)
