"""A frozen worker is not taken over while it lives (issue 23, point 2): a worker stopped
(SIGSTOP, a laptop asleep) past the heartbeat's grace period was failed and continued by
another worker; woken, it trained an epoch twice and died with UpdateFinishedTrialError. A live
process on this host is trusted over a silent heartbeat; a dead one's trial is still failed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from sweep import records as rec
from sweep.store import liveness
from sweep.store.ownership import OwnedStorage


def test_a_silent_trial_of_a_live_process_here_is_not_failed_a_dead_ones_is(
    tmp_path: Path,
) -> None:
    frozen = subprocess.Popen(["sleep", "60"])
    os.kill(frozen.pid, signal.SIGSTOP)  # alive, and silent
    gone = subprocess.Popen(["true"])
    gone.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        storage = OwnedStorage(f"sqlite:///{tmp_path / 'f.db'}", heartbeat_interval=1,
                               grace_period=1)  # fmt: skip
    try:
        study = optuna.create_study(storage=storage, study_name="f")
        study_id = storage.get_study_id_from_name("f")
        owners = {}
        for who, pid in (("frozen", frozen.pid), ("dead", gone.pid)):
            trial = study.ask()
            trial.set_user_attr(rec.WORKER, liveness.worker_id(pid) if who == "frozen"
                                else f"{liveness.host_id()}:{pid}:1")  # fmt: skip
            storage.record_heartbeat(
                storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            )
            owners[who] = trial.number
        time.sleep(2.5)  # both heartbeats silent past the grace period

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)

        states = {who: study.trials[n].state for who, n in owners.items()}
        assert states == {"frozen": TrialState.RUNNING, "dead": TrialState.FAIL}
    finally:
        storage.engine.dispose()
        frozen.kill()
        frozen.wait()
