"""A frozen worker is not taken over while it lives (issue 23, point 2): a worker stopped
(SIGSTOP, a laptop asleep) past the heartbeat's grace period was failed and continued by
another worker; woken, it trained an epoch twice and died with UpdateFinishedTrialError. A live
process on this host is trusted over a silent heartbeat; a dead one's trial is still failed.
One on another machine, which this host cannot judge, is taken over after the grace period,
and fenced: woken, its writes are refused and it drops the trial in one line."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import time
import warnings
from pathlib import Path

import optuna
import pytest
from cli_runs import Sweep, finished, tiny_args, trials
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


#: Runs python as "machine-a": its own host name (a UTS namespace), so this host cannot judge
#: its process and takes its silent trial over after the grace period, as for another machine.
_MACHINE_A = ["unshare", "-u", "sh", "-c", 'hostname machine-a && exec "$@"', "sh"]
_EPOCH = re.compile(r"trial (\d+) epoch (\d+)/")


def test_a_worker_of_another_machine_woken_after_its_trial_was_taken_over_writes_nothing_more(
    tmp_path: Path,
) -> None:
    """Fencing (issue 23, point 2): machine A is stopped at epoch 2, this machine takes its
    trial over after the grace period (heartbeat 1 s, grace 4 s) and continues it; woken, A
    used to rewrite the trial's checkpoint (an epoch trained twice) and die with "Cannot tell a
    FAIL trial". Now its writes are refused: one line, and it goes on with the sweep."""
    probe = subprocess.run([*_MACHINE_A, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot run a process under another host name here: {probe.stderr!r}")
    url, env = f"sqlite:///{tmp_path / 's.db'}", {"LSTM_SWEEP_HEARTBEAT_S": "1"}
    args = tiny_args(url, trials=2, epochs=8, samples=3000)
    a = Sweep(args, tmp_path, env, prefix=_MACHINE_A)
    a.wait_until(lambda: a.saw(r"trial 0 epoch 2/"), 180)
    os.kill(a.proc.pid, signal.SIGSTOP)
    checkpoint = rec.trial_folder(tmp_path / "checkpoints", "tiny", 0) / rec.LAST
    try:
        b = Sweep(args, tmp_path, env)
        b.wait_until(lambda: b.saw(r"continuing trial 0 from epoch"), 120)
        taken_at = checkpoint.stat().st_mtime_ns
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    rc_a, rc_b = a.wait(180), b.wait(180)

    for run in (a, b):
        assert "Traceback" not in run.output, run.output
    assert (rc_a, rc_b) == (0, 0), a.output + "\n---\n" + b.output
    dropped = [ln for ln in a.lines if "was taken over by another worker" in ln]
    assert len(dropped) == 1 and dropped[0].startswith("trial 0 "), a.output
    assert checkpoint.stat().st_mtime_ns == taken_at  # not rewritten by the woken owner
    ts = trials(url, "tiny")
    (heir,) = [t.number for t in ts if t.user_attrs.get(rec.CONTINUES_TRIAL) == 0]
    assert f"trial {heir} continues it" in dropped[0], dropped
    assert len(finished(ts)) == 2, [(t.number, t.state) for t in ts]
    assert not [t for t in ts if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # No epoch trained twice: each epoch of each line of trials printed once, by A or by B.
    line = {t.number: t.system_attrs.get("retry_history", [t.number])[0] for t in ts}
    printed = collections.Counter(
        (line[int(m[1])], int(m[2])) for run in (a, b) for ln in run.lines
        for m in _EPOCH.finditer(ln)
    )  # fmt: skip
    assert max(printed.values()) == 1, printed
