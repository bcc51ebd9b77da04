"""A machine that died moments ago (issue 23, point 3): its trials are RUNNING with a fresh
heartbeat, and this machine cannot judge its processes. The same command here waits for the
heartbeat's grace period, takes them over and ends with exactly --trials finished (it ended
`done.`, exit 0, with the study short)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from sweep import records as rec
from tests.cli_runs import Sweep, finished, run_study, tiny_args, trials


def test_trials_of_a_machine_that_just_died_are_waited_for_and_taken_over(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = run_study(tiny_args(url, trials=2, epochs=1), tmp_path)
    assert first.returncode == 0, first.stderr
    # Machine B's two trials. B beats until this machine's run says it is waiting for them,
    # then dies: its heartbeat is fresh then however slowly the run started up, so a heartbeat
    # every second (grace 4 s) is enough, and the wait takes 5 s (the 10 s default: 50 s).
    timeout = {"connect_args": {"timeout": 60}}
    storage = optuna.storages.RDBStorage(url, engine_kwargs=timeout)
    study = optuna.load_study(study_name="tiny", storage=storage)
    study_id = storage.get_study_id_from_name("tiny")
    ids = []
    for pid in (4242, 4243):
        trial = study.ask()
        trial.set_user_attr(rec.WORKER, f"machine-b/4026531836:{pid}:12345")
        ids.append(storage.get_trial_id_from_study_id_trial_number(study_id, trial.number))
    b_alive = threading.Event()
    b_alive.set()

    def machine_b() -> None:
        while b_alive.is_set():
            for trial_id in ids:
                storage.record_heartbeat(trial_id)
            time.sleep(0.2)

    beats = threading.Thread(target=machine_b, daemon=True)
    beats.start()
    try:
        again = Sweep(tiny_args(url, trials=4, epochs=1), tmp_path,
                      env={"LSTM_SWEEP_HEARTBEAT_S": "1"})  # fmt: skip
        again.wait_until(lambda: again.saw(r"running on another machine"), 180)
    finally:
        b_alive.clear()  # machine B dies
        beats.join(10)
        storage.engine.dispose()

    assert again.wait(300) == 0, again.output
    assert "running on another machine (machine-b/4026531836)" in again.output
    ts = trials(url, "tiny")
    assert len(finished(ts)) == 4, [(t.number, t.state) for t in ts]
    assert not [t for t in ts if t.state in (TrialState.RUNNING, TrialState.WAITING)]
