"""The study's best step, shared by its tune jobs through one file per shard (tuning/pruning.py)."""

import json
import math

from batch_science.tables import best_step_file
from batch_science.tuning.pruning import StudyBest


def fingerprint(trial_id):
    return f"settings of trial {trial_id}"


def jobs(folder, n=2, finished=()):
    files = [best_step_file(folder, shard) for shard in range(n)]
    return [StudyBest(files, files[shard], fingerprint, list(finished) if shard == 0 else []) for shard in range(n)]


def test_a_job_learns_the_best_step_another_job_found(tmp_path):
    first, second = jobs(tmp_path)
    assert first.share(math.inf, -1) == math.inf == second.share(math.inf, -1)
    assert first.share(120.0, 7) == 120.0
    assert second.share(math.inf, -1) == 120.0
    assert second.share(80.0, 9) == 80.0 and first.share(120.0, 7) == 80.0
    assert json.loads(best_step_file(tmp_path, 0).read_text())["trial_id"] == 7  # each job writes only its own


def test_own_file_only_improves_ties_to_the_lowest_trial(tmp_path):
    (job,) = jobs(tmp_path, 1)
    job.share(100.0, 5)
    job.share(140.0, 2)  # a worse step never replaces a better one
    job.share(100.0, 3)  # the same step with a lower trial id does
    entry = json.loads(best_step_file(tmp_path, 0).read_text())
    assert (entry["steps_to_result"], entry["trial_id"], entry["fingerprint"]) == (100.0, 3, fingerprint(3))


def test_a_file_made_under_other_settings_or_unreadable_is_ignored(tmp_path):
    first, second = jobs(tmp_path)
    best_step_file(tmp_path, 1).write_text(json.dumps({"steps_to_result": 10, "trial_id": 4, "fingerprint": "old"}))
    assert first.share(math.inf, -1) == math.inf
    best_step_file(tmp_path, 1).write_text("{not json")
    assert first.share(200.0, 1) == 200.0


def test_finished_trials_of_an_earlier_run_count(tmp_path):
    records = [{"steps_to_result": 60.0, "trial_id": 2}, {"steps_to_result": math.nan, "trial_id": 0}]
    first, second = jobs(tmp_path, finished=records)
    assert first.share(math.inf, -1) == 60.0
    assert second.share(math.inf, -1) == 60.0
