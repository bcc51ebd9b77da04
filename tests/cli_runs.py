"""Running ``study.py`` the way a person does, for the end-to-end, crash and parallel tests:
in a subprocess, with its output read line by line so a test can act on what it prints."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna

from model.delivered import load_model
from sweep import records as rec
from sweep.store.storage import resolve_url

ROOT = Path(__file__).resolve().parents[1]
STUDY_PY = str(ROOT / "study.py")
#: Seconds a checkpoint write pauses before its rename (model.checkpoint's test hook).
SLOW_SAVE_ENV = "LSTM_SWEEP_TEST_SLOW_SAVE"


def tiny_args(storage: str, name: str = "tiny", trials: int = 3, epochs: int = 2,
              samples: int = 200, workers: int = 1) -> list[str]:  # fmt: skip
    return ["--trials", str(trials), "--epochs", str(epochs), "--samples", str(samples),
            "--workers", str(workers), "--storage", storage, "--study-name", name]  # fmt: skip


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != SLOW_SAVE_ENV}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


def run_study(args: list[str], cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 180) -> subprocess.CompletedProcess:  # fmt: skip
    """``python study.py ARGS`` to the end; output captured as text."""
    return subprocess.run([sys.executable, STUDY_PY, *args], cwd=cwd, env=_env(env),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


class Sweep:
    """A ``study.py`` run in the background; its stdout and stderr, merged, are collected."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None,
                 prefix: list[str] | None = None) -> None:  # fmt: skip
        """``prefix``: a command that runs python (``unshare -u ...``), the process's own."""
        self.proc = subprocess.Popen([*(prefix or []), sys.executable, STUDY_PY, *args],
                                     cwd=cwd, env=_env(env), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def saw(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in list(self.lines))

    def wait_until(self, condition: Callable[[], bool], timeout: float = 120) -> None:
        """Poll ``condition`` until it holds; fail if the run ends or time runs out first."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                self._reader.join(5)
                if condition():
                    return
                raise AssertionError(f"study.py ended (rc {self.proc.returncode}) before the "
                                     f"awaited moment:\n{self.output}")  # fmt: skip
            if time.monotonic() > deadline:
                self.signal(signal.SIGKILL)
                raise AssertionError(f"timed out waiting; output so far:\n{self.output}")
            time.sleep(0.005)

    def signal(self, sig: int = signal.SIGKILL, timeout: float = 60) -> int:
        """Send ``sig`` and wait for the process to end; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def wait(self, timeout: float = 180) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc


def tmp_files(folder: Path, name: str) -> list[Path]:
    """Checkpoint writes in progress (or abandoned by a killed process) under ``folder``."""
    return list(folder.glob(f"checkpoints/*/trial-*/{name}*.tmp"))


#: Given a run and its folder, a condition polled until the moment to act on the run comes.
Trigger = Callable[["Sweep", Path], Callable[[], bool]]


def writing(name: str) -> Trigger:
    """A kill trigger: a run has started writing checkpoint ``name`` (its temporary file is
    there; the slow-save hook holds it there before the rename)."""

    def trigger(sweep: Sweep, folder: Path) -> Callable[[], bool]:
        stale = set(tmp_files(folder, name))  # left by an earlier kill: not this run's
        return lambda: bool(set(tmp_files(folder, name)) - stale)

    return trigger


def trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(resolve_url(url))
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()


def close(storage: optuna.storages.RDBStorage) -> None:
    """Let go of the database connections of the storage a study was opened on (so the file
    can be compared or removed)."""
    storage.engine.dispose()


def finished(ts: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [t for t in ts if t.state in states]


def running_with_owner(db: Path) -> list[int]:
    """Numbers of the RUNNING trials whose process is already recorded (read with plain
    sqlite3, as a dashboard would, while the sweep writes)."""
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            rows = con.execute(
                "SELECT t.number FROM trials t JOIN trial_user_attributes a USING (trial_id) "
                "WHERE t.state = 'RUNNING' AND a.key = 'worker'"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:  # the file or its tables are being created
        return []
    return [r[0] for r in rows]


def integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_curves_continuous(t: optuna.trial.FrozenTrial) -> None:
    """One curve per finished trial: epochs 1..n each reported once, the stored per-epoch
    curves as long as the trial's epochs and equal to the reported values."""
    n = t.user_attrs["epochs"]
    steps = dict(t.intermediate_values)
    if t.state == optuna.trial.TrialState.PRUNED:
        # One step past the last epoch: the delivered validation MSE, Optuna's value.
        assert t.user_attrs["value_step"] == n + 1
        assert steps.pop(n + 1) == t.value == t.user_attrs["val_mse"]
    assert sorted(steps) == list(range(1, n + 1)), t.intermediate_values
    # Kept as a system attribute, off the user attributes the dashboard draws.
    assert rec.CURVES_KEY not in t.user_attrs and rec.CURVES_KEY in t.system_attrs
    curve = rec.curve(t, rec.VAL_MSE_CURVE)
    assert len(curve) == n, (t.number, curve)
    assert curve == [t.intermediate_values[e] for e in range(1, n + 1)]


def assert_same_run(continued: optuna.trial.FrozenTrial,
                    reference: optuna.trial.FrozenTrial) -> None:  # fmt: skip
    """A trial continued from a checkpoint ended exactly as the uninterrupted one did: every
    per-epoch curve (but the seconds), its numbers, its verdict and its delivered weights."""
    curves, ref_curves = rec.curves(continued), rec.curves(reference)
    assert curves.keys() == ref_curves.keys()
    for name in curves.keys() - {"seconds"}:
        assert curves[name] == ref_curves[name], name
    assert continued.intermediate_values == reference.intermediate_values
    for key in ("train_mse", "val_mse", "test_mse", "epochs", "best_epoch", "stop_reason",
                "verdict", "verdict_epoch"):  # fmt: skip
        assert continued.user_attrs.get(key) == reference.user_attrs.get(key), key
    assert continued.state == reference.state and continued.value == reference.value
    a, _, _ = load_model(Path(continued.user_attrs["best_checkpoint"]))
    b, _, _ = load_model(Path(reference.user_attrs["best_checkpoint"]))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
