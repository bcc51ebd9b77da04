"""A trial names its process in the same transaction that makes it RUNNING.

Optuna's ``ask()`` makes a trial RUNNING (a new one, or a WAITING one it claims) and only then
runs the objective, whose first act used to be recording the ``worker`` attribute. A process
killed in between left a RUNNING trial that no liveness check could judge. This storage
writes the owner with the state change itself, so every trial our workers run is owned from
its first moment; a RUNNING trial without an owner was made by some other program, and
``sweep.liveness`` judges it by its age.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState, create_trial
from sqlalchemy.exc import IntegrityError

from sweep import liveness
from sweep import records as rec


class OwnedStorage(RDBStorage):
    """``RDBStorage`` whose new and claimed trials carry ``rec.WORKER`` at once.
    (It reaches into Optuna's RDB internals for the claim: the public API has no way to
    change a state and an attribute in one transaction.)"""

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        # Optuna's trial cache calls this one, and create_new_trial does too.
        if template_trial is None:  # ask(): a new RUNNING trial, owned by this process
            template_trial = create_trial(
                state=TrialState.RUNNING, user_attrs={rec.WORKER: liveness.worker_id()}
            )
        return super()._create_new_trial(study_id, template_trial)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if state != TrialState.RUNNING or values is not None:
            return super().set_trial_state_values(trial_id, state, values)
        # ask() claiming a WAITING trial: Optuna's own steps, plus the owner.
        try:
            with _create_scoped_session(self.scoped_session) as session:
                trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
                self.check_trial_is_updatable(trial_id, trial.state)
                if trial.state != TrialState.WAITING:
                    return False
                trial.state = TrialState.RUNNING
                trial.datetime_start = datetime.now()
                self._set_trial_attr_without_commit(
                    session, models.TrialUserAttributeModel, trial_id, rec.WORKER,
                    liveness.worker_id(),
                )  # fmt: skip
        except IntegrityError:
            return False
        return True
