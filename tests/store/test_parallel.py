"""Several workers, one study: separate processes started at once (on SQLite and on
PostgreSQL) and ``--workers 3`` in one command end with exactly ``--trials`` finished trials."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from cli_runs import SLOW_SAVE_ENV, Sweep, finished, integrity, tiny_args, trials, writing
from optuna.trial import TrialState
from servers import postgres_database

from sweep import records as rec

# Each checkpoint write pauses, so that a trial lasts about a second and the workers overlap.
SLOW = {SLOW_SAVE_ENV: "0.3"}
N = 6


def _run_three_at_once(url: str, folder: Path) -> list[Sweep]:
    """Three ``study.py --workers 1`` started together, run to the end."""
    args = tiny_args(url, "par", trials=N, epochs=2, samples=200, workers=1)
    sweeps = [Sweep(args, cwd=folder, env=SLOW) for _ in range(3)]
    for s in sweeps:
        assert s.wait() == 0, s.output
    return sweeps


def _assert_exactly_n(url: str, sweeps: list[Sweep]) -> list[optuna.trial.FrozenTrial]:
    ts = trials(url, "par")
    done = finished(ts)
    assert len(done) == N, [(t.number, t.state.name) for t in ts]
    assert not [t for t in ts if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # Refused trials (a worker asked for one at the moment the study filled up) are the only
    # extra ones; they never ran an epoch.
    for t in ts:
        if t not in done and t.user_attrs.get("stop_reason") in ("surplus", "duplicate"):
            assert t.user_attrs.get("worker") and not rec.curves(t)
    output = "\n".join(s.output for s in sweeps)
    assert "database is locked" not in output and "Traceback" not in output
    owners = {t.user_attrs["worker"] for t in done}
    assert len(owners) >= 2, "the workers did not overlap"
    print(f"\n{len(done)} finished, {len(ts) - len(done)} refused, {len(owners)} workers")
    return ts


def test_three_processes_share_one_sqlite_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    stop = threading.Event()
    reads: list[int] = []

    def dashboard() -> None:
        # What optuna-dashboard does: read the whole study over and over while it is written.
        while not stop.is_set():
            if (tmp_path / "s.db").exists():
                try:
                    storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
                    for s in storage.get_all_studies():
                        study_id = storage.get_study_id_from_name(s.study_name)
                        reads.append(len(storage.get_all_trials(study_id)))
                    storage.engine.dispose()
                except Exception:  # noqa: BLE001 - the tables may not exist yet
                    pass
            stop.wait(0.05)

    reader = threading.Thread(target=dashboard, daemon=True)
    reader.start()
    try:
        sweeps = _run_three_at_once(url, tmp_path)
    finally:
        stop.set()
        reader.join(10)
    _assert_exactly_n(url, sweeps)
    assert reads, "the reader never saw the study"
    assert integrity(tmp_path / "s.db") == "ok"


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    with postgres_database("sweep_test") as url:
        yield url


def test_three_processes_share_one_postgresql_study(tmp_path: Path, postgres_url: str) -> None:
    sweeps = _run_three_at_once(postgres_url, tmp_path)
    _assert_exactly_n(postgres_url, sweeps)


def test_workers_option_runs_the_trials_in_several_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    sweep = Sweep(tiny_args(url, "par", trials=N, epochs=2, samples=200, workers=3), tmp_path,
                  env=SLOW)  # fmt: skip
    assert sweep.wait() == 0, sweep.output
    assert sweep.saw(r"^\[worker [0-2]\] trial \d+ done")
    _assert_exactly_n(url, [sweep])


def test_three_processes_resuming_at_once_continue_a_cut_off_trial_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = Sweep(tiny_args(url, "par", trials=N, epochs=2, samples=200), tmp_path, env=SLOW)
    first.wait_until(writing("last.npz")(first, tmp_path))  # trial 0 is writing epoch 1
    first.signal(signal.SIGKILL)

    sweeps = _run_three_at_once(url, tmp_path)

    ts = _assert_exactly_n(url, sweeps)
    heirs = [t for t in ts if t.user_attrs.get("continues_trial") == 0]
    ran = [t for t in heirs if t.user_attrs.get("stop_reason") != "duplicate"]
    assert len(ran) == 1 and ran[0] in finished(ts), [t.user_attrs for t in heirs]
