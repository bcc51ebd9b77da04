"""The study's leader, for the clock's polish: a thin Optuna adapter over
``sweep.rules.leader`` (``model.method.LeadCheck``)."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from model.method import LeadCheck
from sweep.rules.leader import leads


def lead_check(trial: optuna.Trial) -> LeadCheck:
    """Whether ``trial``'s run leads its study at a given honest validation MSE: read from the
    storage each time it is asked (once per polish epoch), so a run overtaken meanwhile by
    another worker's model stops."""

    def check(value: float) -> bool:
        done = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return leads(value, (t.value for t in done if t.number != trial.number))

    return check
