"""A trial taken over while its owner lived: the owner's late writes are refused (fencing).

A worker on another machine that is stopped (SIGSTOP, a laptop asleep, a paused VM) past the
heartbeat's grace period cannot be judged from here: its trial is failed and continued by
another worker. When it wakes it must not write anything more for that trial. It used to
rewrite the trial's checkpoint (an epoch trained twice) and die with Optuna's "Cannot tell a
FAIL trial" and a traceback.

The fencing token is the trial's own record: a trial is this process's to write only while
it is RUNNING and carries this process's stamp (``rec.WORKER``, written in the transaction that
made it RUNNING). A takeover fails it, and FAIL is final, so the token can never come back.
Optuna refuses every database write to a finished trial already (``UpdateFinishedTrialError``);
what it cannot refuse are the files a trial writes (its checkpoint, its delivered model, its
artifact) and the end of the trial, which ended in a traceback. So the token is checked before
each of those files is written and before the trial's end is told, and a refused write stops
the trial with ``TakenOver``: one line, and the worker goes on with the sweep.

What is left: a worker stopped between a check and the write it guards (milliseconds, the
write of one checkpoint file) writes that file late. The file holds the same epoch the
continuing trial computes (training is deterministic), in the old trial's folder, which the
continuing trial has read already.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweep import records as rec
from sweep.store import liveness


class TakenOver(BaseException):
    """This process's trial was taken over by another worker; the message is one line.

    A ``BaseException``: Optuna's trial loop catches every ``Exception`` from the objective and
    then tells the trial's end, which the takeover made impossible ("Cannot tell a FAIL
    trial"); this passes through it (``sweep.runner`` then goes on with the sweep)."""


def holds(trial: FrozenTrial) -> bool:
    """Whether this process holds ``trial`` (as stored now): RUNNING, with our stamp."""
    return trial.state == TrialState.RUNNING and trial.user_attrs.get(rec.WORKER) == (
        liveness.worker_id()
    )


def taken_from_us(trial: FrozenTrial) -> bool:
    """Whether ``trial`` (as stored now) was ours and was ended by another process."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get(rec.WORKER) == (
        liveness.worker_id()
    )


def taken_over(number: int, trials: list[FrozenTrial]) -> TakenOver:
    """The one line for trial ``number``, naming the trial that continues it, if any yet."""
    by = [t.number for t in trials if t.user_attrs.get(rec.CONTINUES_TRIAL) == number]
    then = f" and trial {min(by)} continues it" if by else ""
    return TakenOver(
        f"trial {number} was taken over by another worker after this one's heartbeat had been "
        "silent for longer than the grace period (this worker stopped, its machine asleep, or "
        f"the database out of reach){then}: this worker dropped it without writing anything "
        "more"
    )


def check(trial: optuna.Trial) -> None:
    """Raise ``TakenOver`` unless this process still holds ``trial``: called before each file
    the trial writes, and before its end is told."""
    trials = trial.study.get_trials(deepcopy=False)
    stored = next(t for t in trials if t.number == trial.number)
    if not holds(stored):
        raise taken_over(trial.number, trials)
