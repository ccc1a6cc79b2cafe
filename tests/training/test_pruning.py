"""Exact pruning (config prune): trials that cannot be their study's best stop, and the answer stays.

The reference is the same study trained without pruning (float64: a trial's arithmetic does not
depend on which trials share its graph or when it is set aside), scored by a plain rule written
here: the fewest first steps at the goal, ties to the lowest trial id.
"""

import math

import pytest

from batch_science.config import Study
from batch_science.data.load import load
from batch_science.models.registry import get_model
from batch_science.training.engine import Engine
from batch_science.trials import NOT_REACHED, PRUNED, REACHED, Target
from batch_science.tuning.search import study_trials

pytestmark = pytest.mark.slow

TARGET = Target("error", 0.6)


def best_of(outcomes):
    """(steps to result, trial id) of the winner, from the curves alone."""
    hits = []
    for outcome in outcomes:
        steps = [row["step"] for row in outcome.curve if row["val_error"] < TARGET.value]
        if steps and outcome.status != "infeasible":
            hits.append((min(steps), outcome.trial["trial_id"]))
    return min(hits, default=(math.nan, -1))


FULL_RUNS = {}


@pytest.fixture(scope="module")
def study(tiny_config, mnist1d_data_dir):
    """Eight trials of the tiny study's sgd b32 search, and a function that trains them all to their budget.

    Full and pruned runs are compared in graphs of the same size: XLA compiles a graph of one slot
    differently from one of several, which moves float64 results in their last bits."""
    config = dict(tiny_config, data_dir=mnist1d_data_dir, trials=8)
    trials = study_trials(config, Study("mnist1d_mlp", "sgd", 32), range(8))
    arrays = load({"name": "mnist1d"}, mnist1d_data_dir)
    engine = Engine(get_model({"name": "mlp", "hidden": [16]}), arrays, "sgd", batch_size=32, precision="float64")

    def full(group_size, study_trials=trials):
        key = (group_size, study_trials[0]["eval_every"])
        if key not in FULL_RUNS:
            FULL_RUNS[key] = engine.run(study_trials, TARGET, group_size=group_size)
        return FULL_RUNS[key]

    return engine, trials, full


def trial_steps(outcomes):
    return sum(o.final_step for o in outcomes)


@pytest.mark.parametrize("group_size", [1, 3])
def test_pruned_run_finds_the_full_runs_best_trial_with_fewer_steps(study, group_size):
    engine, trials, full_run = study
    full = full_run(group_size)
    pruned = engine.run(trials, TARGET, group_size=group_size, prune_trials=True)
    assert best_of(pruned) == best_of(full)
    assert not math.isnan(best_of(full)[0])
    best_steps = best_of(full)[0]
    assert trial_steps(pruned) < trial_steps(full)
    for cut, whole in zip(pruned, full):
        # A trial's curve so far is exactly its full curve's first rows.
        assert cut.curve == whole.curve[: len(cut.curve)]
        if cut.status == PRUNED:
            assert cut.final_step >= best_steps and cut.final_step < cut.trial["step_budget"]
            assert not (whole.steps_to_result <= cut.final_step)  # it could not have won
        else:
            assert (cut.status, cut.steps_to_result) == (whole.status, whole.steps_to_result)
            if cut.status == REACHED:
                assert cut.curve == whole.curve
            # Trials that never met the goal train at most to the best step, not their budget.
            if cut.status == NOT_REACHED:
                assert cut.final_step == cut.trial["step_budget"] <= best_steps
    assert PRUNED in {o.status for o in pruned}


def test_a_lower_trial_meeting_the_goal_at_the_best_step_is_not_pruned(study):
    """Another job of the study found the best step S first (with a higher trial id): the trial here
    that meets the goal exactly at S still trains to S and reaches it, so it wins the tie."""
    engine, trials, full_run = study
    # Evaluated every 50 steps, each compiled call holds one interval: the host sees every
    # evaluation before the next, the one before S included.
    trials = [dict(trial, eval_every=50) for trial in trials]
    full = full_run(2, trials)
    steps, trial_id = best_of(full)
    told = []
    pruned = engine.run(
        trials,
        TARGET,
        group_size=2,
        prune_trials=True,
        share_best=lambda best_step, best_trial: told.append((best_step, best_trial)) or steps,
    )
    assert pruned[trial_id].status == REACHED and pruned[trial_id].steps_to_result == steps
    assert best_of(pruned) == (steps, trial_id)
    assert all(o.final_step <= steps for o in pruned)  # nothing trains past the best step
    assert told[-1] == (steps, trial_id)  # this job tells the others its own best
