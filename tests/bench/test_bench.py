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
