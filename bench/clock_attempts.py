"""What a clock study's trials spent on their attempts (issue 11).

    python -m bench.clock_attempts [studies.db] [--study-name lstm-clock]

From the curves every clock trial records (attempt, stage, seconds per epoch): how many initial
weights were tried, how many went on to the full-length stage (grown, or partly grown with
every block started), how long a stalled attempt grew before it was given up, and the wall
time of the trials that finished and of those stopped as stalled.
"""

from __future__ import annotations

import argparse
import statistics

import optuna

from sweep import records as rec
from sweep.trial_record import read as read_record


def attempt_costs(trials: list[optuna.trial.FrozenTrial]) -> tuple[list[float], list[float]]:
    """(grow seconds of each attempt given up, grow seconds of each attempt that tuned)."""
    stalled: list[float] = []
    tuned: list[float] = []
    for t in trials:
        attempt = rec.curve(t, rec.ATTEMPT)
        stage = rec.curve(t, rec.STAGE)
        secs = rec.curve(t, "seconds")
        for k in sorted(set(attempt)):
            idx = [i for i, a in enumerate(attempt) if a == k]
            grow = sum(secs[i] for i in idx if stage[i] == "grow")
            (tuned if any(stage[i] == "tune" for i in idx) else stalled).append(grow)
    return stalled, tuned


def _spread(xs: list[float]) -> str:
    if not xs:
        return "none"
    return (f"median {statistics.median(xs):.0f} s, mean {statistics.mean(xs):.0f} s, "
            f"range {min(xs):.0f}-{max(xs):.0f} s (n = {len(xs)})")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("db", nargs="?", default="studies.db")
    p.add_argument("--study-name", default="lstm-clock")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study_name, storage=f"sqlite:///{args.db}")
    trials = [t for t in study.trials if rec.curve(t, rec.ATTEMPT)]
    stalled, tuned = attempt_costs(trials)
    print(f"initial weights tried: {len(stalled) + len(tuned)}; went on to the full-length "
          f"stage: {len(tuned)}")  # fmt: skip
    print(f"grow time of an attempt given up: {_spread(stalled)}")
    print(f"grow time of an attempt that tuned: {_spread(tuned)}")
    for state in ("COMPLETE", "PRUNED"):
        records = [read_record(t) for t in trials if t.state.name == state]
        walls = [r.wall_seconds for r in records if r and r.wall_seconds is not None]
        print(f"{state.lower()} trials, wall: {_spread(walls)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
