"""The benchmark's goal check reads the right rows and says plainly whether each goal is met."""
import pandas as pd

from batch_science.bench import goal_lines


def test_goal_lines_pick_the_best_engine_strategy_and_judge_each_goal():
    rows = [
        (16, "keras_fit", 1.0, 0.01, None), (16, "engine", 60.0, 0.2, None), (16, "engine_job_per_core", 85.0, 0.3, None),
        (4096, "keras_fit", 1.0, 0.02, None), (4096, "engine", 8.0, 0.55, None), (4096, "engine_job_per_core", 6.0, 0.4, None),
        (16, "engine_sweep", 20.0, 0.1, 39.9),
    ]
    table = pd.DataFrame(rows, columns=["batch_size", "strategy", "ratio_vs_keras_fit", "fraction_of_matmul_peak", "sweep_ratio_vs_keras_fit"])
    assert goal_lines(table) == [
        "b16: 85.0x the Keras loop (engine_job_per_core), goal 80x: met",
        "b4096: 8.0x the Keras loop (engine), goal 3x: met",
        "b4096: 55% of the matmul peak (engine), goal 60%: NOT met",
        "sweep b16: 39.9x the Keras loop, start-up included, goal 40x: NOT met",
    ]
