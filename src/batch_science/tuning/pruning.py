"""The fewest steps to result of a study, shared by its tune jobs (config `prune`).

Each tune job (shard) of a study writes its own small file (tables.best_step_file): the fewest
steps to result of the trials it trained, with the trial and that trial's fingerprint. Every job
reads all the study's files after each compiled call and prunes against the smallest (trials.prune).
One writer per file and atomic renames mean no locks and no torn reads; a file made under other
settings (its trial's fingerprint differs) is ignored. Which job learns the best step when only
changes how early trials are pruned, never the study's steps to result or its best trial.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

from batch_science.io import atomic_write

log = logging.getLogger(__name__)


class StudyBest:
    """This job's best (steps to result, trial id) and the study's, read from the files of all its jobs."""

    def __init__(self, files: list[Path], own: Path, fingerprint: Callable[[int], str], finished: list[dict]):
        """`files`: every job's file, `own` this job's among them; `fingerprint(trial_id)` what a
        trial's result depends on now; `finished`: records of this job's trials already on disk."""
        self.files, self.own, self.fingerprint = files, own, fingerprint
        reached = [(r["steps_to_result"], r["trial_id"]) for r in finished if math.isfinite(r["steps_to_result"])]
        self.best = min(reached, default=(math.inf, -1))
        self.written = (math.inf, -1)
        self.seen: dict[Path, tuple[tuple[int, int], float]] = {}  # file -> ((mtime, size), its best step)
        self.fingerprints: dict[int, str] = {}

    def share(self, best_step: float, best_trial: int) -> float:
        """Record this job's best, write it if it improved, and return the study's best step."""
        self.best = min(self.best, (best_step, best_trial))
        if self.best < self.written:
            steps, trial_id = self.best
            entry = {"steps_to_result": steps, "trial_id": trial_id, "fingerprint": self._fingerprint(trial_id)}
            atomic_write(self.own, lambda tmp: Path(tmp).write_text(json.dumps(entry)))
            self.written = self.best
        return min([self.best[0], *(self._read(path) for path in self.files)])

    def _fingerprint(self, trial_id: int) -> str:
        if trial_id not in self.fingerprints:
            self.fingerprints[trial_id] = self.fingerprint(trial_id)
        return self.fingerprints[trial_id]

    def _read(self, path: Path) -> float:
        """The best step in a job's file; inf if there is none, or it was made under other settings."""
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return math.inf
        version = (stat.st_mtime_ns, stat.st_size)
        if path in self.seen and self.seen[path][0] == version:
            return self.seen[path][1]
        try:
            entry = json.loads(path.read_text())
            valid = entry["fingerprint"] == self._fingerprint(int(entry["trial_id"]))
            steps = float(entry["steps_to_result"]) if valid else math.inf
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("%s: unreadable (%s), not used for pruning", path, " ".join(str(error).split()))
            steps = math.inf
        else:
            if not valid:
                log.warning("%s: made with other settings, not used for pruning", path)
        self.seen[path] = (version, steps)
        return steps
