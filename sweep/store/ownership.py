"""A trial names its process in the same transaction that makes it RUNNING.

Optuna's ``ask()`` makes a trial RUNNING (a new one, or a WAITING one it claims) and only then
runs the objective, whose first act used to be recording the ``worker`` attribute. A process
killed in between left a RUNNING trial that no liveness check could judge. This storage
writes the owner with the state change itself, so every trial our workers run is owned from
its first moment; a RUNNING trial without an owner was made by some other program, and
``sweep.store.liveness`` judges it by its age.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from sweep import records as rec
from sweep.store import fencing, liveness
from sweep.store.optuna_private import StampingStorage


class OwnedStorage(StampingStorage):
    """``RDBStorage`` whose new and claimed trials carry ``rec.WORKER`` at once. (The public
    API has no way to change a state and an attribute in one transaction: how it is done,
    through Optuna's internals, is fenced in ``sweep.store.optuna_private``.)"""

    def stamp(self) -> dict[str, Any]:
        return {rec.WORKER: liveness.worker_id()}

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        try:
            return super().set_trial_state_values(trial_id, state, values)
        except UpdateFinishedTrialError:
            # Telling the end of a trial another process took over since the objective's
            # last check (sweep.store.fencing): one line, not Optuna's "Cannot tell a FAIL
            # trial" traceback.
            if state in (TrialState.COMPLETE, TrialState.PRUNED):
                trial = self.get_trial(trial_id)
                if fencing.taken_from_us(trial):
                    raise fencing.taken_over(trial.number, []) from None
            raise

    def alive_despite_silence(self, trial: FrozenTrial) -> bool:
        # A worker frozen (SIGSTOP, a laptop asleep) past the grace period was taken over
        # while it lived; woken, it trained an epoch twice and died with
        # UpdateFinishedTrialError. A live process on this host is trusted over its silence.
        worker = trial.user_attrs.get(rec.WORKER)
        return isinstance(worker, str) and liveness.owner_alive(worker)
