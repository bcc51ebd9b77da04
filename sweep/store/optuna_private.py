"""Every use of Optuna's private API in this project, fenced in one module.

Only this module may import a private module or name of Optuna (the import-linter contract
"only sweep.store.optuna_private reaches into Optuna's private modules"). Each use below says why
the
public API cannot do its job. ``requirements.txt`` bounds Optuna to the versions the suite has
run against, and ``tests/store/test_optuna_private.py`` fails, naming what changed, if any of these
internals moves (a signature, an attribute, a table, the logger's module).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, Trial, TrialState, create_trial
from sqlalchemy.exc import IntegrityError

#: The logger of Optuna's optimize loop (it lives in the private module
#: ``optuna.study._optimize``), which logs every failed trial. Optuna's public logging API sets
#: the level of all its loggers at once; a filter for one kind of record needs this logger.
OPTIMIZE_LOGGER = "optuna.study._optimize"
#: The logger of Optuna's RDB storage (the private module ``optuna.storages._rdb.storage``),
#: which warns, in several lines, when a query fails and it tries a slower one; a lost
#: connection (which ``sweep.store.reconnect`` rides out) is no such case.
RDB_LOGGER = "optuna.storages._rdb.storage"
#: The backend methods Optuna's trial cache (``_CachedStorage``, which wraps every storage a
#: study opens) calls by their private names, besides the public API of ``BaseStorage``: a
#: storage that wraps every call reaching the database (``sweep.store.reconnect``) must wrap
#: these too, or ``ask()`` and ``get_trials()`` would go unwrapped.
BACKEND_CALLS_BY_PRIVATE_NAME = ("_create_new_trial", "_get_trials", "_get_best_trial_id",
                                 "_set_trial_param", "_get_stale_trial_ids")  # fmt: skip


def optuna_tables() -> frozenset[str]:
    """The tables Optuna's RDB storage makes: its SQLAlchemy models are the one list (the
    public API has none)."""
    return frozenset(models.BaseModel.metadata.tables)


def set_trial_system_attr(trial: Trial, key: str, value: Any) -> None:
    """Store a system attribute of a running trial, which optuna-dashboard does not draw (it
    draws every user attribute). ``Trial.set_system_attr`` was deprecated in Optuna 3.1 and is
    gone since 5.0; the storage's public ``set_trial_system_attr`` needs the trial's private
    id. The trial's own view is updated too, as Optuna's ``Trial.set_constraint`` does, so
    ``frozen(trial)`` sees the write as ``trial.user_attrs`` sees ``set_user_attr``'s."""
    trial.study._storage.set_trial_system_attr(trial._trial_id, key, value)
    trial._cached_frozen_trial.system_attrs[key] = value


def frozen(trial: Trial) -> FrozenTrial:
    """A running trial as its own process sees it, system attributes included (the public
    ``Trial`` has no ``system_attrs`` since Optuna 5.0): a copy of Optuna's cached view of the
    trial, read at ``ask()`` and updated by the trial's own writes, so no database round trip."""
    return copy.deepcopy(trial._cached_frozen_trial)


class StampingStorage(RDBStorage):
    """``RDBStorage`` whose trials carry ``stamp()``'s user attributes from the transaction
    that makes them RUNNING: a new trial from ``ask()``, or a WAITING one it claims.

    The public API has no way to change a trial's state and an attribute in one transaction,
    so both paths reach into Optuna's RDB internals:
    - ``_create_new_trial``: Optuna's trial cache (``_CachedStorage``, which wraps every
      storage a study opens) calls the backend's private ``_create_new_trial``, not the public
      ``create_new_trial``, so only an override of the private one is seen by ``ask()``.
    - the claim in ``set_trial_state_values`` repeats Optuna's own steps for a WAITING trial
      (its session helper, its trial model, its attribute writer), plus the stamp.
    """

    def stamp(self) -> dict[str, Any]:
        """The user attributes a trial carries from its first RUNNING moment."""
        return {}

    def alive_despite_silence(self, trial: FrozenTrial) -> bool:
        """Whether a trial whose heartbeat went silent is known to run still (never, here)."""
        return False

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        # Optuna's fail_stale_trials (also run by study.optimize before each trial) asks the
        # backend's private method which trials to fail; only an override is seen there.
        stale = super()._get_stale_trial_ids(study_id)
        return [i for i in stale if not self.alive_despite_silence(self.get_trial(i))]

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        # Optuna's trial cache calls this one, and create_new_trial does too.
        if template_trial is None:  # ask(): a new RUNNING trial, stamped at once
            template_trial = create_trial(state=TrialState.RUNNING, user_attrs=self.stamp())
        return super()._create_new_trial(study_id, template_trial)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if state != TrialState.RUNNING or values is not None:
            return super().set_trial_state_values(trial_id, state, values)
        # ask() claiming a WAITING trial: Optuna's own steps, plus the stamp.
        try:
            with _create_scoped_session(self.scoped_session) as session:
                trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
                self.check_trial_is_updatable(trial_id, trial.state)
                if trial.state != TrialState.WAITING:
                    return False
                trial.state = TrialState.RUNNING
                trial.datetime_start = datetime.now()
                for key, value in self.stamp().items():
                    self._set_trial_attr_without_commit(
                        session, models.TrialUserAttributeModel, trial_id, key, value
                    )
        except IntegrityError:
            return False
        return True
