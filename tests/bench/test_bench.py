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
