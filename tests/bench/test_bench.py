"""The benchmark's goal check reads the right rows and says plainly whether each goal is met."""

import pandas as pd

from batch_science.bench.__main__ import goal_lines


def test_goal_lines_pick_the_best_engine_strategy_and_judge_each_goal():
    rows = [
        (16, "keras_fit", 1.0, 0.01, None),
        (16, "engine", 60.0, 0.2, None),
        (16, "engine_job_per_core", 85.0, 0.3, None),
        (4096, "keras_fit", 1.0, 0.02, None),
        (4096, "engine", 8.0, 0.55, None),
        (4096, "engine_job_per_core", 6.0, 0.4, None),
        (16, "engine_sweep", 20.0, 0.1, 39.9),
        (16, "engine_sweep_job_per_core", 25.0, 0.1, 38.0),
    ]
    table = pd.DataFrame(
        rows,
        columns=["batch_size", "strategy", "ratio_vs_keras_fit", "fraction_of_matmul_peak", "sweep_ratio_vs_keras_fit"],
    )
    assert goal_lines(table) == [
        "b16: 85.0x the Keras loop (engine_job_per_core), goal 80x: met",
        "b4096: 8.0x the Keras loop (engine), goal 3x: met",
        "b4096: 55% of the matmul peak (engine), goal 60%: NOT met",
        "sweep b16: 39.9x the Keras loop, start-up included (engine_sweep), goal 40x: NOT met",
    ]


def test_processes_side_by_side_merge_into_one_run():
    from batch_science.bench.measurements import merged

    parts = [
        {
            "trials": 48,
            "trial_steps": 100,
            "slot_steps": 200,
            "seconds": 10.0,
            "import_s": 4.0,
            "host_s": 0.5,
            "final_steps": [1, 2],
            "status": ["reached"],
            "eval_every": 50,
        },
        {
            "trials": 48,
            "trial_steps": 300,
            "slot_steps": 200,
            "seconds": 12.0,
            "import_s": 3.0,
            "host_s": 0.25,
            "final_steps": [3],
            "status": ["infeasible"],
            "eval_every": 50,
        },
    ]
    run = merged(parts)
    assert (run["trials"], run["trial_steps"], run["seconds"], run["import_s"], run["host_s"]) == (
        96,
        400,
        12.0,
        4.0,
        0.75,
    )
    assert run["final_steps"] == [1, 2, 3] and run["status"] == ["reached", "infeasible"]
    assert run["slot_utilisation"] == 1.0 and run["eval_every"] == 50


def test_the_keras_model_goal_is_met_at_ten_times_the_keras_loop_and_not_below():
    from batch_science.bench.__main__ import keras_model_goal_lines

    def line(ratio):
        table = pd.DataFrame(
            [(16, "engine_keras_model", ratio, 0.5), (16, "engine", 2 * ratio, 1.0)],
            columns=["batch_size", "strategy", "ratio_vs_keras_fit", "ratio_vs_engine"],
        )
        return keras_model_goal_lines(table)

    assert line(10.0) == [
        "b16 Keras model in the engine: 10.0x the Keras loop, goal 10x: met (0.50x the native engine)"
    ]
    assert line(9.99)[0].endswith("goal 10x: NOT met (0.50x the native engine)")


def test_paper_goal_lines_judge_each_model_and_batch_and_the_compilation_rule():
    from batch_science.bench.__main__ import paper_goal_lines

    columns = ["model", "batch_size", "strategy", "compilation", "trials_per_graph", "trial_steps_per_s"]
    rows = [
        ("cnn", 16, "keras_fit", "graph", 1, 10.0),
        ("cnn", 16, "engine", "graph", 1, 10.0),
        ("cnn", 16, "engine_xla", "xla", 1, 0.5),
        ("cnn", 16, "engine_4_per_graph", "graph", 4, 11.0),
        ("lm", 256, "keras_fit", "graph", 1, 10.0),
        ("lm", 256, "engine", "xla", 2, 29.9),
        ("lm", 256, "engine_4_per_graph", "xla", 4, 34.0),
    ]
    table = pd.DataFrame(rows, columns=columns)
    table["ratio_vs_keras_fit"] = table.trial_steps_per_s / 10.0
    table["first_call_s"] = [None, 20.0, 50.0, 1.0, None, 19.9, 1.0]
    assert paper_goal_lines(table) == [
        "cnn b16: engine (graph, 1 per graph) 1.00x the Keras loop, goal 1x: met; first call 20.0s, goal 20s: NOT met",
        "cnn b16: the rule's graph ran 20.0x the speed of xla (first call 50.0s): rule backed",
        "cnn b16: the automatic 1 per graph ran 0.91x the speed of 4 per graph: a tie (runs differ by up to 10%)",
        "lm b256: engine (xla, 2 per graph) 2.99x the Keras loop, goal 3x: NOT met; first call 19.9s, goal 20s: met",
        "lm b256: the automatic 2 per graph ran 0.88x the speed of 4 per graph: grouping NOT backed",
    ]


def test_keras_twins_of_the_paper_models_train_as_many_weights():
    """The baseline trains the same network: the same trainable parameters as the engine's model
    (the Transformer's twin also learns its positions and an untied read-out)."""
    from batch_science.bench.paper_workloads import PAPER_WORKLOADS, keras_network
    from batch_science.models.registry import get_model

    for workload in PAPER_WORKLOADS.values():
        model = get_model(workload.model)
        keras_model = keras_network(workload, model)
        trainable = sum(int(w.numpy().size) for w in keras_model.trainable_weights)
        expected = model.parameter_count(workload.input_shape, workload.num_classes)
        if workload.model["name"] == "transformer_lm":
            d_model = model.dims[1]
            expected += workload.input_shape[0] * d_model + d_model * workload.num_classes + workload.num_classes
        assert trainable == expected, workload.name


def test_pruning_goal_needs_the_ratio_over_all_studies_and_every_answer_identical():
    from batch_science.bench.__main__ import pruning_goal_lines

    table = pd.DataFrame(
        {
            "trial_steps_full": [1000, 3000],
            "trial_steps_pruned": [900, 1000],  # 1.11x and 3x: 2.11x over both
            "identical_steps_to_result": [True, True],
            "wall_s_full": [10.0, 30.0],
            "wall_s_pruned": [10.0, 10.0],
            "precision": ["float64", "float64"],
        }
    )
    (line,) = pruning_goal_lines(table)
    assert line.startswith("pruning: 2.11x fewer trial-steps over 2 studies (2.00x less wall time)")
    assert line.endswith("identical in 2/2, goal 1.7x and all identical: met")
    table.loc[0, "identical_steps_to_result"] = False
    assert pruning_goal_lines(table)[0].endswith("identical in 1/2, goal 1.7x and all identical: NOT met")
    assert pruning_goal_lines(table.iloc[:0]) == []
    table = pd.concat([table, table.assign(precision="float32")], ignore_index=True)
    assert pruning_goal_lines(table)[1] == "pruning in float32: identical in 1/2 studies"
