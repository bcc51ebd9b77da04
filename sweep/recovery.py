"""Trials cut off by a dead process or Ctrl-C are queued again and continue from their last
checkpoint, so no finished epoch is trained twice and the learning curve stays one curve."""

from __future__ import annotations

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from sweep import liveness

#: How often one trial may be continued before it is left failed (a trial that kills its
#: process every time should not loop forever).
MAX_RETRIES = 3
STOP_OWNER_DIED = "owner_died"
STOP_INTERRUPTED = "interrupted"
#: Attributes that describe how the dead attempt ended, not the trial: not carried over.
_NOT_INHERITED = ("worker", "stop_reason", "verdict", "verdict_epoch", "action", "verdict_reason")


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a WAITING copy of ``trial`` that continues from its checkpoint.

    Same signature as Optuna's heartbeat stale-trial callback, which it replaces: it also keeps
    the intermediate values and points the copy at the dead trial's checkpoint."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRIES:
        return
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in _NOT_INHERITED}
    if "checkpoint" in trial.user_attrs:
        user_attrs["continues_checkpoint"] = trial.user_attrs["checkpoint"]
    user_attrs["continues_trial"] = trial.number
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=user_attrs,
            system_attrs={"failed_trial": history[0], "retry_history": history},
            intermediate_values=trial.intermediate_values,
        )
    )


def _retried(trials: list[FrozenTrial]) -> set[int]:
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def recover(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose process on this host is gone, and queue every cut-off trial
    that has not been queued yet. Returns the numbers of the trials queued again."""
    storage = study._storage  # Optuna's own stale-trial handling works at this level too.
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.state == TrialState.RUNNING and not liveness.alive(t):
            try:
                storage.set_trial_user_attr(t._trial_id, "stop_reason", STOP_OWNER_DIED)
                storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            except UpdateFinishedTrialError:
                pass  # another worker got there first
    trials = study.get_trials(deepcopy=False)
    done = _retried(trials)
    queued = []
    for t in trials:
        reason = t.user_attrs.get("stop_reason")
        cut_off = reason in (STOP_OWNER_DIED, STOP_INTERRUPTED)
        if t.state == TrialState.FAIL and cut_off and t.number not in done:
            requeue(study, t)
            queued.append(t.number)
    return queued
