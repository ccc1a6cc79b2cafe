"""The paper's workloads through Engine.run: language models scored per token, augmentation, batch
norm at evaluation."""

import numpy as np
import pytest

from batch_science.models.registry import get_model
from batch_science.training.engine import Engine
from batch_science.trials import REACHED, Target
from conftest import constant_rate_trials

pytestmark = pytest.mark.slow

TEXT = {"name": "synthetic_text", "tokenizer": "bytes", "sequence_length": 32}


def make_trials(learning_rates, budget, eval_every):
    return constant_rate_trials(learning_rates, budget, eval_every, seed=11)


@pytest.fixture(scope="module")
def text_arrays(synthetic_text_data_dir):
    from batch_science.data.load import load

    return load(TEXT, synthetic_text_data_dir)


@pytest.mark.parametrize(
    "spec, learning_rate",
    [
        ({"name": "transformer_lm", "layers": 1, "d_model": 16, "heads": 2, "d_ff": 32}, 0.05),
        ({"name": "lstm_lm", "layers": 1, "hidden": 32, "embedding": 16}, 1.0),
    ],
    ids=["transformer_lm", "lstm_lm"],
)
def test_language_models_train_on_every_token_and_reach_a_cross_entropy_target(text_arrays, spec, learning_rate):
    assert text_arrays.y_train.shape == text_arrays.x_train.shape  # one next-token label per position
    engine = Engine(get_model(spec), text_arrays, "momentum", batch_size=16)
    [outcome] = engine.run(
        make_trials([learning_rate], budget=60, eval_every=20), Target("cross_entropy", 3.5), stop_at_target=False
    )
    val_ce = [point["val_cross_entropy"] for point in outcome.curve]
    train_ce = [point["train_cross_entropy"] for point in outcome.curve[1:]]
    assert val_ce[0] > 5.0 and val_ce[-1] < val_ce[0] - 2.0 and train_ce[-1] < train_ce[0], outcome.curve
    assert outcome.status == REACHED and outcome.steps_to_result == next(
        p["step"] for p in outcome.curve if p["val_cross_entropy"] < 3.5
    )
    assert outcome.curve[-1]["val_error"] < outcome.curve[0]["val_error"]


@pytest.mark.parametrize(
    "sequences_per_chunk", [100, 7]
)  # 7: more chunks than are unrolled, a graph loop and a partial chunk
def test_language_model_evaluation_is_the_mean_over_every_validation_token(text_arrays, sequences_per_chunk):
    """Evaluation in chunks (counted in tokens) give the per-token mean of the whole split."""
    import tensorflow as tf

    from batch_science.training.engine import UNROLLED_EVAL_CHUNKS

    model = get_model({"name": "transformer_lm", "layers": 1, "d_model": 8, "heads": 2, "d_ff": 8})
    engine = Engine(
        model, text_arrays, "sgd", batch_size=4, precision="float64", eval_batch_size=32 * sequences_per_chunk
    )
    if sequences_per_chunk == 7:
        assert len(text_arrays.x_validation) // 7 > UNROLLED_EVAL_CHUNKS and len(text_arrays.x_validation) % 7
    weights = [
        tf.constant(np.stack(w))
        for w in zip(*(model.init(seed, engine.input_shape, engine.num_classes) for seed in (1, 2)))
    ]
    val_ce, val_error = (t.numpy() for t in engine.evaluate(weights))
    logits = model.apply(weights, tf.constant(text_arrays.x_validation, tf.float64), shared=True).numpy()
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = text_arrays.y_validation
    expected_ce = -np.take_along_axis(
        log_probs, np.broadcast_to(labels[None, ..., None], (2, *labels.shape, 1)), -1
    ).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(val_ce, expected_ce, rtol=1e-9)
    np.testing.assert_allclose(val_error, (logits.argmax(-1) != labels[None]).mean(axis=(1, 2)), rtol=1e-12)


def test_language_model_study_runs_end_to_end_through_snakemake(tmp_path):
    """Data, tune (the workload's own 2 trials), aggregate and fit of an LSTM on generated text; the
    figures read only these tables (tests/test_pipeline.py runs them)."""
    import pandas as pd

    from conftest import REPO, run_snakemake

    results = tmp_path / "results" / "tiny_lm"
    run_snakemake(
        tmp_path,
        "results/tiny_lm/fits.csv",
        "--cores",
        "2",
        "--configfile",
        str(REPO / "tests" / "configs" / "tiny_lm.yaml"),
    )
    trials, curves = pd.read_parquet(results / "trials.parquet"), pd.read_parquet(results / "curves.parquet")
    steps = pd.read_csv(results / "steps_to_result.csv")
    assert sorted(trials["batch_size"]) == [8, 8, 32, 32] and set(trials["target_metric"]) == {"cross_entropy"}
    for _, curve in curves.groupby(["batch_size", "trial_id"]):
        assert curve["val_cross_entropy"].iloc[-1] < curve["val_cross_entropy"].iloc[0] - 2.0
    assert steps["steps_to_result"].notna().all() and (steps["n_trials"] == 2).all()
    assert pd.read_csv(results / "fits.csv")["s_min"].notna().all()


def curves(outcomes):
    return [[(p["step"], p["train_cross_entropy"], p["val_cross_entropy"]) for p in o.curve] for o in outcomes]


def test_augmentation_is_applied_to_training_batches_by_seed_and_step_never_to_validation(tmp_path):
    import dataclasses

    import tensorflow as tf
    import tensorflow_datasets as tfds

    from batch_science.data import preprocess

    spec = {
        "name": "cifar10",
        "train_split": "train[:32]",
        "validation_split": "train[32:]",
        "augmentation": "crop_flip",
    }
    with tfds.testing.mock_data(num_examples=48):
        augmented = preprocess.load_arrays(tfds.builder("cifar10", data_dir=str(tmp_path)), spec, str(tmp_path))
    plain = dataclasses.replace(augmented, augment=None)
    model = get_model({"name": "simple_cnn", "filters": [2, 4], "dense": 8})
    trials = make_trials([0.01, 0.02], budget=6, eval_every=3)

    engine, plain_engine = (
        Engine(model, arrays, "momentum", batch_size=8, precision="float64") for arrays in (augmented, plain)
    )
    together = curves(engine.run(trials, Target("error", 0.0), group_size=2))
    assert (
        curves(engine.run(trials, Target("error", 0.0), group_size=2)) == together
    )  # the same seeds give the same crops and flips
    alone = curves(engine.run(trials[::-1], Target("error", 0.0), group_size=1))[::-1]
    np.testing.assert_allclose(np.array(alone), np.array(together), rtol=1e-9)  # whichever trials share the graph
    without = curves(plain_engine.run(trials, Target("error", 0.0), group_size=2))
    for with_augmentation, no_augmentation in zip(together, without):
        assert with_augmentation[0] == no_augmentation[0]  # step 0: nothing trained yet
        assert with_augmentation[1][1] != no_augmentation[1][1]  # training loss on other (augmented) batches
    weights = [
        tf.constant(np.stack(w)) for w in zip(*(model.init(seed, augmented.x_train.shape[1:], 10) for seed in (1, 2)))
    ]
    np.testing.assert_array_equal(*(np.stack([t.numpy() for t in e.evaluate(weights)]) for e in (engine, plain_engine)))


def test_batch_norm_evaluation_does_not_depend_on_the_evaluation_batches():
    """ResNet-8 evaluated on the whole validation set at once, or reordered in chunks of 7, gives the same metrics."""
    import tensorflow as tf

    from batch_science.data.arrays import Arrays

    rng = np.random.default_rng(5)
    x = rng.normal(size=(61, 8, 8, 3)) * rng.uniform(0.5, 2.0, size=(61, 1, 1, 1))
    y = rng.integers(0, 4, size=61).astype(np.int32)
    arrays = Arrays(x[:40], y[:40], x[40:], y[40:], 4)
    order = rng.permutation(21)
    shuffled = Arrays(x[:40], y[:40], x[40:][order], y[40:][order], 4)
    model = get_model({"name": "resnet_8", "widths": [4, 8, 8], "ghost_batch_size": 4})
    weights = [tf.constant(np.stack(w)) for w in zip(*(model.init(seed, (8, 8, 3), 4) for seed in (1, 2)))]
    metrics = [
        np.stack(
            [
                t.numpy()
                for t in Engine(model, data, "sgd", 8, precision="float64", eval_batch_size=size).evaluate(weights)
            ]
        )
        for data, size in ((arrays, 21), (shuffled, 7))
    ]
    np.testing.assert_allclose(metrics[1], metrics[0], rtol=1e-10)
    # With the evaluation batch's own statistics a chunk's logits depend on the rest of the chunk.
    validation = tf.constant(x[40:])
    whole, part = (
        model.apply(weights, validation, shared=True).numpy(),
        model.apply(weights, validation[:7], shared=True).numpy(),
    )
    assert not np.allclose(whole[:, :7], part, rtol=1e-3)
    # Population statistics: a chunk's logits are those of the whole set.
    statistics = model.batch_norm_statistics(weights, tf.constant(x[:40]))
    np.testing.assert_allclose(
        model.apply(weights, validation[:7], shared=True, statistics=statistics).numpy(),
        model.apply(weights, validation, shared=True, statistics=statistics).numpy()[:, :7],
        rtol=1e-10,
    )


def test_precise_batch_norm_statistics_are_those_of_the_training_sample():
    """Measuring on a sample normalises it exactly as batch norm over that sample would."""
    import tensorflow as tf

    model = get_model({"name": "resnet_8", "widths": [2, 4, 4]})
    x = tf.constant(np.random.default_rng(2).normal(size=(12, 8, 8, 3)))
    weights = [tf.constant(np.stack(w)) for w in zip(*(model.init(seed, (8, 8, 3), 3) for seed in (3, 4)))]
    statistics = model.batch_norm_statistics(weights, x)
    assert len(statistics) == 2 * len(model._norm_names) and statistics[0].shape == (2, 2)
    np.testing.assert_allclose(
        model.apply(weights, x, shared=True, statistics=statistics).numpy(),
        model.apply(weights, x, shared=True).numpy(),
        rtol=1e-10,
    )


def test_compilation_rule_plain_graph_on_a_cpu_for_convolutions_and_for_loops_at_large_batch_else_xla():
    """XLA unless the device is a CPU and the training forward pass convolves, or loops at a batch of
    LOOP_PLAIN_GRAPH_BATCH or more (both sides of it); read from each real model's ops."""
    from batch_science.data.arrays import Arrays
    from batch_science.training.engine import LOOP_PLAIN_GRAPH_BATCH, compiles_with_xla

    large, below = LOOP_PLAIN_GRAPH_BATCH, LOOP_PLAIN_GRAPH_BATCH - 1
    assert compiles_with_xla({"MatMul", "Relu"}, on_gpu=False, batch_size=large)
    assert not compiles_with_xla({"MatMul", "Conv2D"}, on_gpu=False, batch_size=4)
    assert compiles_with_xla({"MatMul", "Conv2D"}, on_gpu=True, batch_size=4)
    assert compiles_with_xla({"MatMul", "While"}, on_gpu=False, batch_size=below)
    assert not compiles_with_xla({"MatMul", "While"}, on_gpu=False, batch_size=large)
    assert compiles_with_xla({"MatMul", "While"}, on_gpu=True, batch_size=large)
    rng = np.random.default_rng(0)

    def engine(spec, shape, batch_size, **options):
        x = rng.integers(0, 8, size=(12, *shape)).astype(np.float64)
        y = rng.integers(0, 8, size=(12, *shape) if len(shape) == 1 and "lm" in spec["name"] else 12)
        return Engine(get_model(spec), Arrays(x[:8], y[:8], x[8:], y[8:], 8), "momentum", batch_size, **options)

    expected = {
        ("mlp", (6,), large): True,
        ("cnn1d", (16,), 4): True,  # trains on matmuls of patches; convolves only to evaluate
        ("simple_cnn", (8, 8, 1), 4): False,
        ("resnet_8", (8, 8, 3), 4): False,
        ("lstm_lm", (6,), below): True,
        ("lstm_lm", (6,), large): False,  # its recurrence is a tf.scan: a While op
        ("transformer_lm", (6,), large): True,
    }
    small = {"simple_cnn": {"filters": [2, 2], "dense": 4}, "resnet_8": {"widths": [2, 2, 2]}}
    small |= {"lstm_lm": {"layers": 1, "hidden": 4, "embedding": 4}}
    small |= {"transformer_lm": {"layers": 1, "d_model": 4, "heads": 1, "d_ff": 4}}
    for (name, shape, batch_size), with_xla in expected.items():
        assert engine({"name": name, **small.get(name, {})}, shape, batch_size).jit_compile is with_xla, name
    simple_cnn = {"name": "simple_cnn", **small["simple_cnn"]}
    assert engine(simple_cnn, (8, 8, 1), 4, jit_compile=True).jit_compile is True


def test_plain_graph_and_xla_train_a_convolutional_model_alike_in_float64():
    """The compilation chosen for a model changes no result: Simple CNN curves agree in float64."""
    from batch_science.data.arrays import Arrays

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(48, 8, 8, 1)), rng.integers(0, 4, size=48)
    arrays = Arrays(x[:32], y[:32], x[32:], y[32:], 4)
    model = get_model({"name": "simple_cnn", "filters": [2, 4], "dense": 8})
    trials = make_trials([0.05, 0.2], budget=6, eval_every=3)
    runs = [
        curves(
            Engine(model, arrays, "momentum", 8, precision="float64", jit_compile=jit).run(
                trials, Target("error", 0.0), group_size=2
            )
        )
        for jit in (False, True)
    ]
    np.testing.assert_allclose(np.array(runs[0]), np.array(runs[1]), rtol=1e-9)


def test_a_plain_graph_trains_each_step_in_a_function_graph_of_its_own_and_xla_inlines_it():
    """In a plain graph the loops call the step's forward and backward pass, max-pool gradient
    included, as a function that is never inlined: oneDNN gives a pool gradient its fast kernel
    reliably only in a graph without loops (Engine.step_function). Under XLA it is inlined."""
    from batch_science.data.arrays import Arrays

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(24, 8, 8, 1)).astype(np.float32), rng.integers(0, 4, size=24)
    arrays = Arrays(x[:16], y[:16], x[16:], y[16:], 4)
    model = get_model({"name": "simple_cnn", "filters": [2, 2], "dense": 4})

    def functions_of_the_loops(jit_compile):
        engine = Engine(model, arrays, "momentum", 4, jit_compile=jit_compile)
        calls, compiled = [], engine.intervals
        engine.intervals = lambda *args: calls.append(args) or compiled(*args)
        engine.run(make_trials([0.1], budget=2, eval_every=2), Target("error", 0.0))
        library = compiled.get_concrete_function(*calls[0]).graph.as_graph_def().library.function
        # Per function the loops call: whether it is marked never to be inlined, and its op types.
        return [("_noinline" in f.attr and f.attr["_noinline"].b, {n.op for n in f.node_def}) for f in library]

    plain = functions_of_the_loops(jit_compile=False)
    assert [not_inlined for not_inlined, ops in plain if "MaxPoolGrad" in ops] == [True]
    xla = functions_of_the_loops(jit_compile=True)
    assert not any(not_inlined for not_inlined, _ in xla)
    assert any("MaxPoolGrad" in ops for _, ops in xla)


def test_batch_norm_sample_is_at_most_what_a_trial_trains_on_between_evaluations():
    """1024 examples, or fewer where an evaluation follows fewer training examples: both sides of 1024."""
    from batch_science.training.engine import BATCH_NORM_EXAMPLES, batch_norm_sample, batch_norm_sample_size

    assert BATCH_NORM_EXAMPLES == 1024
    assert batch_norm_sample_size(64, 16) == 1024  # exactly as many trained between evaluations
    assert batch_norm_sample_size(65, 16) == 1024 and batch_norm_sample_size(3000, 16) == 1024
    assert batch_norm_sample_size(63, 16) == 1008 and batch_norm_sample_size(20, 16) == 320
    assert batch_norm_sample_size(1, 1) == 1
    np.testing.assert_array_equal(batch_norm_sample(40, 10), np.arange(0, 40, 4))  # evenly spaced
    np.testing.assert_array_equal(batch_norm_sample(40, 1024), np.arange(40))


def test_engine_evaluates_batch_norm_with_the_statistics_of_its_sample():
    """The engine's validation metrics in float64 equal those computed from the model normalised by
    the statistics of its `batch_norm_sample_size` evenly spaced training examples (and not all 40)."""
    import tensorflow as tf

    from batch_science.data.arrays import Arrays
    from batch_science.training.engine import batch_norm_sample

    rng = np.random.default_rng(8)
    x = rng.normal(size=(52, 8, 8, 3)) * rng.uniform(0.5, 2.0, size=(52, 1, 1, 1))
    y = rng.integers(0, 4, size=52).astype(np.int32)
    arrays = Arrays(x[:40], y[:40], x[40:], y[40:], 4)
    model = get_model({"name": "resnet_8", "widths": [2, 4, 4]})
    weights = [tf.constant(np.stack(w)) for w in zip(*(model.init(seed, (8, 8, 3), 4) for seed in (1, 2)))]

    def metrics(engine):
        return np.stack([t.numpy() for t in engine.evaluate(weights)])

    def expected(sample):
        statistics = model.batch_norm_statistics(weights, tf.constant(x[:40][sample]))
        logits = model.apply(weights, tf.constant(x[40:]), shared=True, statistics=statistics).numpy()
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        ce = -np.take_along_axis(log_probs, np.broadcast_to(y[40:, None], (2, 12, 1)), -1)[..., 0].mean(-1)
        return np.stack([ce, (logits.argmax(-1) != y[40:]).mean(-1)])

    sampled = metrics(Engine(model, arrays, "momentum", 4, "float64", batch_norm_sample_size=10))
    np.testing.assert_allclose(sampled, expected(batch_norm_sample(40, 10)), rtol=1e-10)
    everything = metrics(Engine(model, arrays, "momentum", 4, "float64"))
    np.testing.assert_allclose(everything, expected(np.arange(40)), rtol=1e-10)
    assert not np.allclose(sampled[0], everything[0], rtol=1e-6)


def test_a_tune_job_sizes_the_batch_norm_sample_from_its_evaluation_interval(tiny_config):
    """build_engine: eval_every 2 at batch 4 normalises on 8 training examples, eval_every 300 on 1024."""
    import copy

    from batch_science.config import Study
    from batch_science.data.arrays import Arrays
    from batch_science.tuning.tune_job import build_engine

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 8, 8, 3)), rng.integers(0, 4, size=12)
    arrays = Arrays(x[:8], y[:8], x[8:], y[8:], 4)
    for eval_every, expected in ((2, 8), (300, 1024)):
        config = copy.deepcopy(tiny_config)
        name = next(iter(config["workloads"]))
        config["workloads"][name] |= {"model": {"name": "resnet_8", "widths": [2, 2, 2]}, "eval_every": eval_every}
        engine = build_engine(config, Study(name, "momentum", 4), arrays)
        assert engine.batch_norm_sample_size == expected
