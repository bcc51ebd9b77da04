"""The study's leader, for the clock's polish: a thin Optuna adapter over
``sweep.rules.leader`` (``model.method.LeadCheck``)."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from model.method import LeadCheck
from sweep import records as rec
from sweep.rules.leader import leads
from sweep.trial_record import read as read_record


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
        done = trial.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
        )
        rivals = (t.user_attrs.get(rec.GOAL_MSE) for t in done
                  if t.number != trial.number and not _converged(t))  # fmt: skip
        return leads(goal_mse, rivals)

    return check


def _converged(trial: FrozenTrial) -> bool:
    """A run that stopped as converged (its polish had no descent left): it can go no lower,
    so it is no rival."""
    record = read_record(trial)
    return record is not None and record.stop_reason == rec.STOP_CONVERGED
