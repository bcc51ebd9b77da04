"""Whether a trial that just started is needed at all: a second copy of one cut-off trial, or a
trial beyond ``--trials``, is refused before it trains."""

from __future__ import annotations

import optuna

from sweep import records as rec
from sweep.store.recovery import occupancy


class SurplusTrial(Exception):
    """The study already holds (or is running) the trials asked for: this one is not needed."""


class DuplicateTrial(SurplusTrial):
    """Another trial already continues the same cut-off trial."""


def refuse_surplus(trial: optuna.Trial, wanted: int) -> None:
    """Refuse a trial the study does not need: a second copy of one cut-off trial (or of one
    leader's polish), or a new run beyond ``wanted`` counting the finished runs and those that
    started running before this one in live processes."""
    trials = trial.study.get_trials(deepcopy=False)
    me = next(t for t in trials if t.number == trial.number)
    parent = me.user_attrs.get(rec.CONTINUES_TRIAL)
    if parent is not None and any(
        t.number < me.number
        and t.user_attrs.get(rec.CONTINUES_TRIAL) == parent
        and t.user_attrs.get(rec.STOP_REASON) != rec.STOP_SURPLUS
        for t in trials
    ):
        trial.set_user_attr(rec.STOP_REASON, rec.STOP_DUPLICATE)
        raise DuplicateTrial(f"trial {parent} is already continued by another trial")
    if me.user_attrs.get(rec.LEADS_ON) is not None:
        return  # a leader's polish on a finished run: no new run, so never beyond --trials
    done, running = occupancy(trials, me)
    if done + running >= wanted:
        trial.set_user_attr(rec.STOP_REASON, rec.STOP_SURPLUS)
        trial.study.stop()
        raise SurplusTrial(f"{done} finished and {running} running: nothing left to do")
