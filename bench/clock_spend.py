"""Where a clock sweep's time went, trial by trial, and when its first excellent model came.

    python -m bench.clock_spend [studies.db] [--study-name lstm-clock] [--json FILE]

From the curves every clock trial records (stage, attempt, seconds and validation MSE per
epoch) and Optuna's timestamps: per trial its seed, state, attempts, the grow seconds of the
attempts given up and of the one that went on, the polish seconds and the polish curve (the
honest validation MSE after each polish epoch), its delivered value and when it finished,
counted from the study's first trial start. ``--json`` writes the same rows for
``bench.polish_policy``, which replays budget rules on the recorded polish curves.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import optuna

from sweep import records as rec
from sweep.rules.criteria import EXCELLENT as EXCELLENT_TIER
from sweep.trial_record import read as read_record

#: The excellent tier's train bound: with S ignored every set scores alike.
EXCELLENT = EXCELLENT_TIER.max_train


@dataclass(frozen=True)
class TrialSpend:
    number: int
    state: str
    seed: int | None
    attempts: int
    grow_given_up_s: float
    grow_went_on_s: float
    tune_s: float
    polish_s: float
    polish_curve: tuple[float, ...]
    value: float | None
    finished_after_s: float | None
    stop_reason: str | None
    leads_on: int | None = None
    """The trial whose run this one polished on as the study's leader (its epochs are that
    trial's row; this row has only its own)."""


def spend_of(trial: optuna.trial.FrozenTrial, t0: float, inherited: int = 0) -> TrialSpend:
    """``inherited``: the epochs its curves carry from the trial it continues (not its own)."""
    record = read_record(trial)
    stage, attempt = rec.curve(trial, rec.STAGE), rec.curve(trial, rec.ATTEMPT)
    secs, val = rec.curve(trial, rec.SECONDS), rec.curve(trial, rec.VAL_MSE_CURVE)
    before = set(attempt[:inherited])
    stage, attempt, secs, val = (c[inherited:] for c in (stage, attempt, secs, val))
    went_on = {attempt[i] for i, s in enumerate(stage) if s != "grow"}

    def grow_s(on: bool) -> float:
        return sum(
            secs[i] for i, s in enumerate(stage) if s == "grow" and (attempt[i] in went_on) == on
        )

    done = trial.datetime_complete.timestamp() - t0 if trial.datetime_complete else None
    return TrialSpend(
        number=trial.number, state=trial.state.name, seed=trial.params.get("seed"),
        attempts=len(set(attempt) - before),
        grow_given_up_s=grow_s(False), grow_went_on_s=grow_s(True),
        tune_s=sum(secs[i] for i, s in enumerate(stage) if s == "tune"),
        polish_s=sum(secs[i] for i, s in enumerate(stage) if s == "polish"),
        polish_curve=tuple(val[i] for i, s in enumerate(stage) if s == "polish"),
        value=trial.value, finished_after_s=done,
        stop_reason=record.stop_reason if record else None,
        leads_on=trial.user_attrs.get(rec.LEADS_ON),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("db", nargs="?", default="studies.db")
    p.add_argument("--study-name", default="lstm-clock")
    p.add_argument("--json", default="", help="write one JSON line per trial here")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study_name, storage=f"sqlite:///{args.db}")
    trials = [t for t in study.trials if t.datetime_start is not None]
    t0 = min(t.datetime_start.timestamp() for t in trials)
    by_number = {t.number: t for t in study.trials}

    def inherited(t: optuna.trial.FrozenTrial) -> int:
        parent = by_number.get(t.user_attrs.get(rec.CONTINUES_TRIAL, -1))
        return len(rec.curve(parent, rec.VAL_MSE_CURVE)) if parent is not None else 0

    rows = [spend_of(t, t0, inherited(t)) for t in trials]
    print("trial state    seed  att  grow-lost  grow-on  polish  value     done@   polish curve")
    for r in rows:
        curve = " ".join(f"{v:.5f}" for v in r.polish_curve)
        value = f"{r.value:.5f}" if r.value is not None else "-"
        done = f"{r.finished_after_s:6.0f}s" if r.finished_after_s is not None else "-"
        print(f"{r.number:5d} {r.state:8s} {r.seed!s:>5} {r.attempts:4d} "
              f"{r.grow_given_up_s:9.0f} {r.grow_went_on_s:8.0f} {r.polish_s:7.0f}  {value:9s} "
              f"{done}  {curve}")  # fmt: skip
    total = {k: sum(getattr(r, k) for r in rows)
             for k in ("grow_given_up_s", "grow_went_on_s", "tune_s", "polish_s")}  # fmt: skip
    print("seconds in epochs: " + ", ".join(f"{k} {v:.0f}" for k, v in total.items()))
    # A run polished on by the leader counts once, by its first trial (excellent there, or
    # not; the leader's polish only lowers it further).
    runs = [r for r in rows if r.leads_on is None]
    excellent = [r.finished_after_s for r in runs
                 if r.value is not None and r.value < EXCELLENT
                 and r.finished_after_s]  # fmt: skip
    attempts = sum(r.attempts for r in runs)
    went_on = sum(1 for r in runs if r.polish_curve or r.tune_s)
    print(
        f"attempts {attempts}, went on to the full-length stage {went_on} "
        f"({100 * went_on / max(attempts, 1):.1f}% per attempt); excellent "
        f"{len(excellent)} of {len(runs)}; first excellent delivered "
        f"{min(excellent):.0f} s after the first trial started"
        if excellent
        else "none"
    )
    if args.json:
        with open(args.json, "w") as f:
            for r in rows:
                f.write(json.dumps(asdict(r)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
