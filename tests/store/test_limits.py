"""Limits and settings (issue 23, point 7): a worker count the machine cannot hold, a busy
timeout that is not a number, and repeated reports that each attached another copy of the page.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runs import STUDY_PY, tiny_args
from conftest import TinyStudy
from nobody import Nobody, nobody, writable_folder

import study as study_py
from sweep.report.artifacts import artifact_metas
from sweep.settings import max_workers
from sweep.store.reconnect import RECONNECT_ENV
from sweep.store.storage import HEARTBEAT_ENV, TIMEOUT_ENV


def _refused(capfd: pytest.CaptureFixture[str], argv: list[str], *words: str) -> str:
    """``study.py ARGV`` in this process: exit code 2, one line naming the problem."""
    assert study_py.main(argv) == 2
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    (line,) = err.strip().splitlines()
    for word in words:
        assert word in line, line
    return line


def test_more_workers_than_the_machine_can_hold_are_refused_before_anything_is_made(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _refused(capfd, tiny_args(f"sqlite:///{tmp_path / 's.db'}", workers=10000), "--workers",
             f"at most {max_workers()}", "10000")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def user() -> Iterator[Nobody]:
    with nobody() as u:
        yield u


def test_a_worker_the_system_will_not_start_ends_the_run_in_one_line(user: Nobody) -> None:
    """Under a limit on processes (``ulimit -u``, which root is exempt from: the run is made
    as nobody), starting the workers fails part-way: no traceback, no trial started."""
    if user.why:
        pytest.skip(f"cannot run as nobody: {user.why}")
    folder = writable_folder()
    try:
        workers = min(8, max_workers())  # 4 started at most: the 5th process is refused
        # As many trials as workers: a sweep starts no more workers than it has trials left.
        args = tiny_args("sqlite:///s.db", trials=workers, workers=workers, epochs=1, samples=300)
        proc = user.run([STUDY_PY, *args], folder, nproc=4,
                        env={"OPENBLAS_NUM_THREADS": "1"})  # fmt: skip
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert "cannot start worker process" in line and f"of {workers}" in line, line
        assert "no trial was started" in line and "--workers" in line, line
        assert not (folder / "checkpoints").exists()
        con = sqlite3.connect(folder / "s.db")
        try:
            assert con.execute("SELECT count(*) FROM trials").fetchone() == (0,)
        finally:
            con.close()
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", ""])
@pytest.mark.parametrize("command", ["run", "report"])
def test_a_timeout_that_is_not_a_number_of_seconds_is_refused(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    command: str,
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, value)
    url = f"sqlite:///{tmp_path / 's.db'}"
    argv = tiny_args(url) if command == "run" else ["report", "--storage", url]
    _refused(capfd, argv, TIMEOUT_ENV, repr(value))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "value", "backend"), [
    (HEARTBEAT_ENV, "0", "sqlite"), (HEARTBEAT_ENV, "1.5", "sqlite"),
    (RECONNECT_ENV, "abc", "postgresql"), (RECONNECT_ENV, "-1", "postgresql"),
])  # fmt: skip
def test_a_heartbeat_or_reconnect_window_that_is_not_a_number_of_seconds_is_refused(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    name: str, value: str, backend: str,
) -> None:  # fmt: skip
    monkeypatch.setenv(name, value)
    url = (f"sqlite:///{tmp_path / 's.db'}" if backend == "sqlite"
           else "postgresql://nobody@127.0.0.1:1/none")  # fmt: skip
    _refused(capfd, tiny_args(url), name, repr(value))
    assert list(tmp_path.iterdir()) == []


def _pages(folder: Path) -> list[Path]:
    """The HTML pages in an artifact store."""
    return [p for p in folder.iterdir() if p.read_bytes()[:200].lstrip().startswith(b"<")]


def test_repeated_reports_of_a_growing_study_keep_one_copy_of_the_page(
    tiny_study: TinyStudy, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep watched with ``report --html`` now and then: each new page replaces the last
    (an identical one was already skipped), in the study's list and in the artifact store."""
    monkeypatch.chdir(tiny_study.folder)  # where the sweep ran: its relative paths hold here
    report = ["report", "--storage", "sqlite:///s.db", "--study-name", tiny_study.name,
              "--html", "r.html"]  # fmt: skip
    assert study_py.main(report) == 0
    first = Path("r.html").read_bytes()
    # One more trial, as the running sweep would add: the next page differs.
    more = tiny_args("sqlite:///s.db", tiny_study.name, trials=4, epochs=2, samples=200)
    assert study_py.main([*more, "--quiet"]) == 0
    assert study_py.main(report) == 0
    capfd.readouterr()
    assert Path("r.html").read_bytes() != first

    named = [m for m in artifact_metas(tiny_study.load(), "sqlite:///s.db")
             if m["filename"] == "r.html"]  # fmt: skip
    assert len(named) == 1
    pages = _pages(Path("artifacts"))
    assert [p.name for p in pages] == [named[0]["artifact_id"]]
    assert pages[0].read_bytes() == Path("r.html").read_bytes()
    assert os.path.getsize("r.html") > 1_000_000  # the page the issue counted: ~5 MB each
