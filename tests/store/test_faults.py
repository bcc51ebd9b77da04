"""Faults from outside: nothing lost, nothing stuck, a true message (issue 10)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from cli_runs import Sweep, finished, run_study, tiny_args, trials
from optuna.trial import TrialState
from servers import small_tmpfs

import study as study_py
from sweep import records as rec
from sweep.paths import study_folder
from sweep.records import STOP_CHECKPOINT_WRITE, STOP_CRASHED, STOP_OWNER_DIED
from sweep.store import liveness
from sweep.store.creation import half_made
from sweep.store.recovery import MAX_STALLED_RETRIES, mark_dead, requeue
from sweep.store.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
#: Long enough trials that a signal lands inside one (about 0.2 s an epoch).
SLOW = ["--samples", "3000", "--epochs", "40"]


def _states(url: str, name: str = "tiny") -> list[tuple[TrialState, str | None]]:
    return [(t.state, t.user_attrs.get("stop_reason")) for t in trials(url, name)]


# 1. A trial asked but never owned


def test_our_trials_name_their_process_from_their_first_moment(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    study.enqueue_trial({"x": 1.0})
    claimed, new = study.ask(), study.ask()  # a WAITING trial claimed, then a new one
    for t in (claimed, new):
        frozen = study.get_trials(deepcopy=False)[t.number]
        assert frozen.state == TrialState.RUNNING
        assert frozen.user_attrs[rec.WORKER] == liveness.worker_id()


def test_a_trial_asked_by_a_process_that_died_at_once_is_taken_over(tmp_path: Path) -> None:
    url = "sqlite:///r.db"
    env = {liveness.UNOWNED_GRACE_ENV: "2"}
    run_study([*tiny_args(url, trials=1), "--quiet"], tmp_path, env)
    ask_and_die = ("import optuna, os; s = optuna.load_study(study_name='tiny', storage='"
                   f"{url}'); s.ask(); os.kill(os.getpid(), 9)")  # fmt: skip
    subprocess.run([sys.executable, "-c", ask_and_die], cwd=tmp_path, check=False)

    proc = run_study([*tiny_args(url, trials=2), "--quiet"], tmp_path, env)

    assert proc.returncode == 0, proc.stderr
    states = _states(f"sqlite:///{tmp_path / 'r.db'}")
    assert TrialState.RUNNING not in [s for s, _ in states]
    assert len([s for s, _ in states if s == TrialState.COMPLETE]) == 2
    assert (TrialState.FAIL, STOP_OWNER_DIED) in states


def test_a_young_unowned_trial_counts_as_alive_an_old_one_as_dead() -> None:
    study = optuna.create_study()
    t = study.ask()  # a plain in-memory storage records no owner
    frozen = study.get_trials(deepcopy=False)[t.number]
    assert liveness.alive(frozen)
    later = frozen.datetime_start + __import__("datetime").timedelta(seconds=3600)
    assert not liveness.alive(frozen, now=later)


# 2. Kills from outside never count against a trial


def _cut_off(study: optuna.Study, trial: optuna.Trial, reason: str) -> optuna.trial.FrozenTrial:
    """``trial`` (asked in this process) ends as cut off with ``reason``."""
    trial.set_user_attr("stop_reason", reason)
    study.tell(trial, state=TrialState.FAIL)
    return study.get_trials(deepcopy=False)[trial.number]


@pytest.mark.parametrize(("reason", "given_up"), [(STOP_OWNER_DIED, False),
                                                  (STOP_CHECKPOINT_WRITE, False),
                                                  (STOP_CRASHED, True)])  # fmt: skip
def test_only_a_trials_own_crashes_count_against_it(reason: str, given_up: bool) -> None:
    """Killed from outside again and again during its final evaluation (no new epoch): still
    continued every time. Crashing its own process: given up after MAX_STALLED_RETRIES."""
    study = optuna.create_study()
    first = study.ask()
    first.report(0.4, 1)
    trial = _cut_off(study, first, reason)
    attempts = 0
    while requeue(study, trial) and attempts < 2 * MAX_STALLED_RETRIES:
        attempts += 1
        # The copy starts, reports nothing new, and is cut off again.
        trial = _cut_off(study, study.ask(), reason)
    assert attempts == (MAX_STALLED_RETRIES if given_up else 2 * MAX_STALLED_RETRIES)


def test_a_crashed_worker_has_its_own_running_trials_marked_and_no_others() -> None:
    """The runner saw worker process 12 die of a fatal signal: its RUNNING trial is failed as
    crashed (which counts against the trial); process 123's and a finished one are not."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    trials = [study.ask() for _ in range(3)]
    for t, pid in zip(trials, (12, 123, 12), strict=True):
        t.set_user_attr(rec.WORKER, f"{liveness.host_id()}:{pid}:1")
    study.tell(trials[2], 0.5)

    assert mark_dead(study, storage, 12, STOP_CRASHED) == [trials[0].number]

    crashed, other, done = study.get_trials(deepcopy=False)
    assert crashed.state == TrialState.FAIL and crashed.user_attrs["stop_reason"] == STOP_CRASHED
    assert other.state == TrialState.RUNNING and "stop_reason" not in other.user_attrs
    assert done.state == TrialState.COMPLETE
    assert mark_dead(study, storage, 12, STOP_CRASHED) == []  # already marked


@pytest.mark.parametrize(("sig", "reason", "said"), [
    (signal.SIGSEGV, STOP_CRASHED, "recorded as the trial's own crash"),
    (signal.SIGKILL, STOP_OWNER_DIED, "recorded as cut off"),
])  # fmt: skip
def test_a_worker_that_dies_is_reported_and_its_trial_continued_when_needed(
    tmp_path: Path, sig: int, reason: str, said: str
) -> None:
    """A worker dies mid-trial, of a crash of its own or killed from outside: the sweep says
    which process, how and which trial in one line, leaves no trial RUNNING, and a later run
    that needs more trials continues the trial from its checkpoint; one that needs none leaves
    nothing queued."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = tiny_args(url, trials=2, workers=2, samples=3000, epochs=12)
    sweep = Sweep(args, tmp_path)
    sweep.wait_until(lambda: sweep.saw(r"epoch 2/"))
    victim = next(t for t in trials(url, "tiny") if t.state == TrialState.RUNNING)
    pid = int(victim.user_attrs[rec.WORKER].split(":")[1])

    os.kill(pid, sig)

    assert sweep.proc.wait(timeout=120) == 1, sweep.output
    name = signal.Signals(sig).name
    sweep.wait_until(lambda: sweep.saw(f"died of {name}"))
    assert f"worker process {pid} died of {name} in trial {victim.number} ({said})" in sweep.output
    assert "a run with a larger --trials continues" in sweep.output  # the other worker filled it
    assert "Traceback" not in sweep.output
    dead = trials(url, "tiny")[victim.number]
    assert dead.state == TrialState.FAIL and dead.user_attrs["stop_reason"] == reason
    assert TrialState.RUNNING not in [s for s, _ in _states(url)]
    assert len(finished(trials(url, "tiny"))) == 2

    same = run_study(args, tmp_path)
    assert same.returncode == 0 and "nothing to run" in same.stdout, same.stdout + same.stderr
    assert TrialState.WAITING not in [s for s, _ in _states(url)]

    more = run_study([*args, "--trials", "3"], tmp_path)
    assert more.returncode == 0, more.stdout + more.stderr
    assert f"continuing trials cut off earlier: {victim.number}" in more.stdout
    assert re.search(rf"continuing trial {victim.number} from epoch [1-9]", more.stdout)
    assert len(finished(trials(url, "tiny"))) == 3


# 3. A database whose creation was cut off


def test_a_half_made_database_is_made_again(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    con = sqlite3.connect(db)  # what a kill during Optuna's table creation leaves
    con.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name VARCHAR(512))")
    con.execute("CREATE TABLE version_info (version_info_id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    assert half_made(db)

    proc = run_study([*tiny_args(f"sqlite:///{db}", trials=1), "--quiet"], tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert len(finished(trials(f"sqlite:///{db}", "tiny"))) == 1
    assert not half_made(db)


def test_someone_elses_database_is_never_remade(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE mine (x)")
    con.commit()
    con.close()
    assert not half_made(db)


@pytest.fixture()
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB file system (root only); ``remount(size)`` enlarges it."""
    with small_tmpfs(tmp_path / "small") as folder:
        yield folder


def _remount(folder: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)


def test_a_database_on_a_full_disk_works_once_there_is_room(tmpfs: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmpfs / 's.db'}"
    args = [*tiny_args(url, trials=1), "--quiet", "--checkpoint-dir", str(tmp_path / "ck")]
    first = run_study(args, tmp_path)
    assert first.returncode == 2, first.stderr
    assert "Traceback" not in first.stderr and len(first.stderr.strip().splitlines()) == 1
    _remount(tmpfs, "16m")

    again = run_study(args, tmp_path)

    assert again.returncode == 0, again.stderr
    assert len(finished(trials(url, "tiny"))) == 1


# 4. SIGTERM is Ctrl-C; workers never outlive their parent


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (dead, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_like_ctrl_c(tmp_path: Path, workers: int) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    sweep = Sweep([*tiny_args(url, trials=4, workers=workers), *SLOW], tmp_path)
    sweep.wait_until(lambda: sweep.saw(r"epoch 2/"))
    kids = _children(sweep.proc.pid)

    rc = sweep.signal(signal.SIGTERM)

    assert rc == 143, sweep.output
    assert "terminated:" in sweep.output and "python study.py" in sweep.output
    assert "Traceback" not in sweep.output
    time.sleep(0.5)
    assert not any(_running(k) for k in kids)
    states = _states(url)
    assert TrialState.RUNNING not in [s for s, _ in states]
    assert (TrialState.FAIL, "interrupted") in states


def test_workers_die_with_their_parent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    sweep = Sweep([*tiny_args(url, trials=4, workers=2), *SLOW], tmp_path)
    sweep.wait_until(lambda: sweep.saw(r"epoch 2/"))
    kids = _children(sweep.proc.pid)
    assert kids

    sweep.signal(signal.SIGKILL)

    deadline = time.monotonic() + 20
    while any(_running(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(k) for k in kids)
    assert (TrialState.FAIL, "interrupted") in _states(url)


# 5. A full disk under the checkpoint folder


def test_a_full_checkpoint_disk_stops_the_sweep_with_one_line_and_is_continued(
    tmpfs: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = [*tiny_args(url, trials=3, epochs=2, samples=300), "--quiet",
            "--checkpoint-dir", str(tmpfs)]  # fmt: skip
    _remount(tmpfs, "300k")  # room for some checkpoints (about 70 KB each), not all
    first = run_study(args, tmp_path)
    assert first.returncode == 2, first.stdout + first.stderr
    assert "Traceback" not in first.stderr and len(first.stderr.strip().splitlines()) == 1
    assert "cannot write checkpoint" in first.stderr
    assert (TrialState.FAIL, STOP_CHECKPOINT_WRITE) in _states(url)
    _remount(tmpfs, "16m")

    again = run_study(args, tmp_path)

    assert again.returncode == 0, again.stderr
    assert "continuing trials cut off earlier" in again.stdout
    assert len(finished(trials(url, "tiny"))) == 3


# 7. Study names are never paths


@pytest.mark.parametrize("name", ["../../escape", ".", "..", "a/b", "x" * 300, "/abs"])
def test_a_study_name_maps_to_one_folder_inside_the_checkpoint_folder(name: str) -> None:
    root = Path("/ck")
    folder = study_folder(root, name)
    assert folder.parent == root and folder.name not in (".", "..")
    assert len(folder.name.encode()) < 100
    assert study_folder(root, name + "!") != folder


def test_a_study_named_like_a_path_writes_inside_the_checkpoint_folder(tmp_path: Path) -> None:
    run = tmp_path / "a" / "b"
    run.mkdir(parents=True)
    proc = run_study([*tiny_args("sqlite:///s.db", name="../../escape", trials=1), "--quiet"],
                     run)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    (folder,) = (run / "checkpoints").iterdir()
    assert folder.name.startswith("escape-") and (folder / "trial-0000" / "best.npz").is_file()


# 8. Secrets and messages


def test_a_postgresql_error_never_shows_the_password(capfd: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://postgres:s3cr3t-pw@127.0.0.1:5432/no_such_database_here"
    for argv in (["--storage", url, "--trials", "1"], ["report", "--storage", url]):
        assert study_py.main(argv) == 2
        out, err = capfd.readouterr()
        assert "s3cr3t-pw" not in out + err and len(err.strip().splitlines()) == 1


def test_report_on_an_empty_file_says_so(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "e.db").touch()
    assert study_py.main(["report", "--storage", f"sqlite:///{tmp_path / 'e.db'}"]) == 2
    err = capfd.readouterr().err
    assert "holds no Optuna study" in err and "commit" not in err


def test_report_html_into_a_missing_folder_is_refused(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no" / "such" / "r.html"
    assert study_py.main(["report", "--storage", "sqlite:///x.db", "--html", str(target)]) == 2
    assert "does not exist" in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []


# 9. A repeatable sweep


def test_a_sampler_seed_repeats_the_proposals(tmp_path: Path) -> None:
    params = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        url = "sqlite:///s.db"
        args = [*tiny_args(url, trials=3, samples=100, epochs=1), "--quiet", "--sampler-seed", "7"]
        assert run_study(args, tmp_path / run).returncode == 0
        params.append([t.params for t in trials(f"sqlite:///{tmp_path / run / 's.db'}", "tiny")])
    assert params[0] == params[1] and len({p["lr"] for p in params[0]}) == 3
