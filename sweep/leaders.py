"""The study's leader, for the clock's polish: a thin Optuna adapter over
``sweep.rules.leader``, asked by a polishing run (``lead_check``, a ``model.method.LeadCheck``)
and after every trial (``polish_on``), for a run that finished before a rival made it the
leader."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from model.checkpoint import CheckpointError
from model.method import LeadCheck, Method
from sweep import records as rec
from sweep.rules.leader import leads
from sweep.store.recovery import queue_leader
from sweep.trial_record import read as read_record

#: Rivals: runs with a goal MSE, finished or still polishing.
_RIVAL_STATES = (TrialState.COMPLETE, TrialState.RUNNING)
#: A leader's polish that was refused is no polish on its run.
_REFUSED = (rec.STOP_SURPLUS, rec.STOP_DUPLICATE)


def lead_check(trial: optuna.Trial) -> LeadCheck:
    """Whether ``trial``'s run leads its study with a given goal MSE, which the first asking
    records on the trial (``records.GOAL_MSE``) for the other runs. The rivals, finished or
    still running (a running one once it has asked), are read from the storage at every asking
    (once per polish epoch past the goal), so a run overtaken meanwhile by another worker's
    stops: in run H of bench/results/clock_sweeps.md, counting finished runs only, a leader with
    goal MSE 0.00086 polished on for 317 s while a running one at 0.00017 was the better."""
    recorded: list[float] = []

    def check(goal_mse: float) -> bool:
        if recorded != [goal_mse]:
            trial.set_user_attr(rec.GOAL_MSE, goal_mse)
            recorded[:] = [goal_mse]
        trials = trial.study.get_trials(deepcopy=False)
        me = next(t for t in trials if t.number == trial.number)
        return leads(goal_mse, _rival_goals(me, trials))

    return check


def finished_leader(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The finished run that leads its study now, by the same rule, and has not been polished
    on yet: in run J of bench/results/clock_sweeps.md the first run reached the best goal
    (0.00037) before any rival had one, so it stopped, and no later run beat it."""
    taken = {t.user_attrs.get(rec.LEADS_ON) for t in trials
             if t.user_attrs.get(rec.STOP_REASON) not in _REFUSED}  # fmt: skip
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.number not in taken
            and _goal(t) is not None and not _converged(t)]  # fmt: skip
    if not done:
        return None
    best = min(done, key=lambda t: (_goal(t), t.number))
    return best if leads(_goal(best), _rival_goals(best, trials)) else None


def polish_on(method: Method, root: Path, log: Callable[[str], None]
              ) -> Callable[[optuna.Study, FrozenTrial], None]:  # fmt: skip
    """An ``optimize`` callback: when a finished run leads, queue a trial that goes on with
    its polish from its last checkpoint (``recovery.queue_leader``), the numbers an unbroken
    leader gets (``Method.reopen``). Nothing is queued for a run with nothing left to gain."""

    def callback(study: optuna.Study, _trial: FrozenTrial) -> None:
        leader = finished_leader(study.get_trials(deepcopy=False))
        if leader is None:
            return
        path = _checkpoint(leader)
        if path is None:
            return
        queue_leader(study, leader, str(path))
        log(f"trial {leader.number} leads the study (goal val MSE {_goal(leader):.3g}): "
            "its polish goes on in the next trial")  # fmt: skip

    def _checkpoint(t: FrozenTrial) -> Path | None:
        stored = t.user_attrs.get(rec.CHECKPOINT)
        for path in (Path(stored), rec.relocated(Path(stored), root)) if stored else ():
            try:
                if path.exists() and method.reopen(method.load(path)) is not None:
                    return path
            except CheckpointError:
                continue
        return None

    return callback


def _rival_goals(me: FrozenTrial, trials: Sequence[FrozenTrial]) -> list[float | None]:
    """The goal MSEs of the other runs: trials of ``me``'s own run (its earlier trials, cut
    off or polished on) are no rivals, nor are runs that stopped as converged."""
    by_number = {t.number: t for t in trials}
    mine = _run_of(me, by_number)
    return [_goal(t) for t in trials if t.state in _RIVAL_STATES
            and _run_of(t, by_number) != mine and not _converged(t)]  # fmt: skip


def _run_of(t: FrozenTrial, by_number: dict[int, FrozenTrial]) -> int:
    """The first trial of ``t``'s run: its line of continuations followed back."""
    seen = {t.number}
    while (parent := t.user_attrs.get(rec.CONTINUES_TRIAL)) in by_number and parent not in seen:
        seen.add(parent)
        t = by_number[parent]
    return t.number


def _goal(t: FrozenTrial) -> float | None:
    return t.user_attrs.get(rec.GOAL_MSE)


def _converged(trial: FrozenTrial) -> bool:
    """A run that stopped as converged (its polish had no descent left): it can go no lower,
    so it is no rival."""
    record = read_record(trial)
    return record is not None and record.stop_reason == rec.STOP_CONVERGED
