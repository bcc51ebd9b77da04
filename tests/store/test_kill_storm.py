"""The short kill storm: a few SIGKILLs at random moments, then nothing lost or stuck."""

from __future__ import annotations

from pathlib import Path

from bench.kill_storm import storm


def test_a_short_kill_storm_loses_nothing(tmp_path: Path) -> None:
    counts = storm(lambda n: f"sqlite:///{tmp_path}/storm-{n}.db", tmp_path, kills=3,
                   processes=1, trials=6, workers=2, epochs=3, samples=300, seed=1)  # fmt: skip
    assert counts.problems == [], counts.line()
    assert counts.kills == 3 and counts.running == 0 and counts.epochs_trained_twice == 0
    assert all(n == 6 for n in counts.finished_per_study)
    assert set(counts.integrity) == {"ok"}
