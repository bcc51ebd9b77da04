"""Where a running sweep stands, read from its study: a line per running trial (its stage,
epoch or prefix, last honest MSE) and a line for the study (finished of N, pruned and stalled,
the best so far with its tier, elapsed time, an estimate of the time left). Pure functions of
the trials, so the live view (``sweep.report.live``) only draws them.

Read from the storage rather than sent by the workers: the same view then counts trials run by
other commands and machines, and a worker process needs no channel to the terminal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from optuna.trial import FrozenTrial, TrialState

from sweep import records as rec
from sweep.report.summary import FINISHED_NAMES, best_row, trial_rows
from sweep.rules.divergence import STALLED


@dataclass(frozen=True)
class TrialLine:
    """A running trial: what its worker is doing."""

    number: int
    epoch: int
    """Epochs it has completed (0: none yet)."""
    stage: str | None = None
    """The method's stage of its latest epoch (None: a method with one stage)."""
    prefix: int | None = None
    """The growing prefix length of its latest epoch, where the method grows one."""
    attempt: int | None = None
    """Which initial weights it trains (counted from 1), where the method starts over."""
    val_mse: float | None = None
    """Honest validation MSE of its latest epoch."""


@dataclass(frozen=True)
class StudyLine:
    finished: int
    target: int
    pruned: int
    stalled: int
    best_number: int | None
    best_val: float | None
    best_tier: str | None
    elapsed_s: float
    eta_s: float | None
    """Seconds left, estimated; None until a trial has finished in this run."""


@dataclass(frozen=True)
class Progress:
    study: StudyLine
    running: tuple[TrialLine, ...]


def trial_line(t: FrozenTrial) -> TrialLine:
    val = rec.curve(t, rec.VAL_MSE_CURVE)
    stage = rec.curve(t, rec.STAGE)
    prefix = rec.curve(t, rec.PREFIX)
    attempt = rec.curve(t, rec.ATTEMPT)
    return TrialLine(
        number=t.number,
        epoch=len(val),
        stage=stage[-1] if stage else None,
        prefix=prefix[-1] if prefix else None,
        attempt=attempt[-1] + 1 if attempt else None,
        val_mse=val[-1] if val else None,
    )


def eta_seconds(durations: Sequence[float], remaining: int, workers: int,
                running_for: Sequence[float]) -> float | None:  # fmt: skip
    """Seconds until the study holds its trials: the mean duration of the trials finished in
    this run, times the trials still to finish, shared by the workers that still have one to
    run (with 1 trial left, 1 of 2 workers), less the time the running ones have already
    spent; None before any trial finished (nothing to go by), and while one runs in a study
    that holds its trials: the leader's polish, past ``--trials``, has no mean to go by (the
    line read "ETA 0:00" through it)."""
    if not durations:
        return None
    if remaining <= 0:
        return None if running_for else 0.0
    mean = sum(durations) / len(durations)
    left = remaining * mean - sum(min(s, mean) for s in running_for)
    return max(0.0, left / max(1, min(workers, remaining)))


def progress(trials: Sequence[FrozenTrial], target: int, workers: int, started: datetime,
             now: datetime) -> Progress:  # fmt: skip
    """The sweep as it stands at ``now``, for a command started at ``started`` (both naive
    local times, as Optuna records a trial's start and end)."""
    rows = trial_rows(trials)
    finished = [r for r in rows if r.state in FINISHED_NAMES]
    best = best_row(rows)
    running = [t for t in trials if t.state == TrialState.RUNNING]
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials
                 if t.state.is_finished() and t.datetime_start and t.datetime_complete
                 and t.datetime_complete >= started]  # fmt: skip
    running_for = [(now - t.datetime_start).total_seconds() for t in running
                   if t.datetime_start]  # fmt: skip
    study = StudyLine(
        finished=len(finished),
        target=target,
        pruned=sum(r.state == "PRUNED" for r in finished),
        stalled=sum(r.verdict == STALLED for r in finished),
        best_number=None if best is None else best.number,
        best_val=None if best is None else best.val_mse,
        best_tier=None if best is None else best.tier,
        elapsed_s=max(0.0, (now - started).total_seconds()),
        eta_s=eta_seconds(durations, target - len(finished), workers, running_for),
    )
    return Progress(study, tuple(trial_line(t) for t in sorted(running, key=lambda t: t.number)))


def clock_text(seconds: float | None) -> str:
    """``1:02:03``, ``4:05``; ``-`` for no estimate."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def study_text(s: StudyLine) -> str:
    parts = [f"{s.finished}/{s.target} finished", f"{s.pruned} pruned"]
    if s.stalled:
        parts.append(f"{s.stalled} stalled")
    best = "best -"
    if s.best_number is not None:
        best = f"best #{s.best_number} val MSE {_mse(s.best_val)} ({s.best_tier or '-'})"
    eta = "ETA -" if s.eta_s is None else f"ETA {clock_text(s.eta_s)}"
    return "  ".join([", ".join(parts), best, f"elapsed {clock_text(s.elapsed_s)}", eta])


def trial_text(t: TrialLine) -> str:
    parts = [f"trial {t.number}"]
    if t.attempt is not None:
        parts.append(f"attempt {t.attempt}")
    if t.stage is not None:
        parts.append(t.stage)
    parts.append(f"epoch {t.epoch}")
    if t.prefix is not None:
        parts.append(f"prefix {t.prefix}")
    parts.append(f"val MSE {_mse(t.val_mse)}")
    return "  ".join(parts)


def _mse(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"
