"""A machine that died moments ago (issue 23, point 3): its trials are RUNNING with a fresh
heartbeat, and this machine cannot judge its processes. The same command here waits for the
heartbeat's grace period, takes them over and ends with exactly --trials finished (it ended
`done.`, exit 0, with the study short)."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from sweep import records as rec
from tests.cli_runs import finished, run_study, tiny_args, trials


def test_trials_of_a_machine_that_just_died_are_waited_for_and_taken_over(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = run_study(tiny_args(url, trials=2, epochs=1), tmp_path)
    assert first.returncode == 0, first.stderr
    # Machine B's two trials, cut off by its death a moment ago: last heartbeat just now.
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=10, grace_period=40)
    try:
        study = optuna.load_study(study_name="tiny", storage=storage)
        study_id = storage.get_study_id_from_name("tiny")
        for pid in (4242, 4243):
            trial = study.ask()
            trial.set_user_attr(rec.WORKER, f"machine-b/4026531836:{pid}:12345")
            storage.record_heartbeat(
                storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            )
    finally:
        storage.engine.dispose()

    # A heartbeat every 4 s (grace 16 s) instead of 10 s (40 s): the wait takes 20 s, not 50 s,
    # and machine B's heartbeat is still fresh however slowly this run starts up.
    again = run_study(tiny_args(url, trials=4, epochs=1), tmp_path, timeout=300,
                      env={"LSTM_SWEEP_HEARTBEAT_S": "4"})  # fmt: skip

    assert again.returncode == 0, again.stdout + again.stderr
    assert "running on another machine (machine-b/4026531836)" in again.stdout
    ts = trials(url, "tiny")
    assert len(finished(ts)) == 4, [(t.number, t.state) for t in ts]
    assert not [t for t in ts if t.state in (TrialState.RUNNING, TrialState.WAITING)]
