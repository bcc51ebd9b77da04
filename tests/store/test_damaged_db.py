"""A damaged, truncated or read-only study database: every command says so in one line, exits
with 2, and creates or changes nothing (issue 23, point 4). The files are real: a database made
by a tiny sweep, then damaged with random bytes or cut short."""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runs import STUDY_PY, run_study, sha256
from conftest import TinyStudy
from nobody import Nobody, nobody, writable_folder

#: The commands a user runs on a study database (``STORAGE`` stands for its URL).
_STUDY = "--study-name tiny --storage STORAGE"
COMMANDS = {
    "run": f"--trials 4 --epochs 2 --samples 200 --workers 1 {_STUDY}",
    "report": f"report {_STUDY}",
    "report --html": f"report {_STUDY} --html r.html",
    "eval": f"eval --trial 0 {_STUDY}",
}


def _copy(tiny: TinyStudy, folder: Path) -> Path:
    """The tiny study's database alone, in ``folder`` (the sweep left no -wal beside it)."""
    assert not Path(f"{tiny.db}-wal").exists()
    db = folder / "studies.db"
    shutil.copyfile(tiny.db, db)
    return db


def _damage(db: Path, how: str) -> None:
    if how == "random bytes at 4096":  # dd if=/dev/urandom bs=1 count=512 seek=4096 conv=notrunc
        with db.open("r+b") as fh:
            fh.seek(4096)
            fh.write(random.Random(23).randbytes(512))
    elif how == "truncated":
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


def _listing(folder: Path) -> dict[str, str]:
    return {p.name: sha256(p) if p.is_file() else "dir" for p in sorted(folder.iterdir())}


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("how", ["random bytes at 4096", "truncated"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_damaged_database_is_named_and_left_as_it_is(
    tiny_study: TinyStudy, tmp_path: Path, how: str, command: str
) -> None:
    db = _copy(tiny_study, tmp_path)
    _damage(db, how)
    before = _listing(tmp_path)
    args = COMMANDS[command].replace("STORAGE", f"sqlite:///{db.name}").split()

    line = _one_line(run_study(args, tmp_path))

    assert f"{db.name} is damaged (PRAGMA integrity_check: " in line, line
    assert "malformed" in line or "btreeInitPage" in line, line
    assert ".recover" in line, line
    assert _listing(tmp_path) == before  # no -wal, -shm, r.html, artifacts/ or checkpoints/


# --- read-only ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def user() -> Iterator[Nobody]:
    with nobody() as u:
        yield u


def _read_only_copy(tiny: TinyStudy, how: str, user: Nobody) -> tuple[Path, list[str]]:
    """A copy of the tiny study (database and checkpoints) in a folder the user may write,
    the database read-only to the user; and the command prefix that runs study.py as them."""
    if how == "owned by root, run as nobody":
        if user.why:
            pytest.skip(f"cannot run as nobody: {user.why}")
        folder = writable_folder()
        prefix = user.prefix
    else:
        folder = Path(tempfile.mkdtemp())
        prefix = []
    db = _copy(tiny, folder)
    shutil.copytree(tiny.folder / "checkpoints", folder / "checkpoints")
    db.chmod(0o644)
    if how == "immutable (chattr +i)":
        if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
            shutil.rmtree(folder)
            pytest.skip("chattr +i does not work here")
    return db, prefix


def _run_as(
    user: Nobody, prefix: list[str], args: list[str], folder: Path
) -> subprocess.CompletedProcess:
    if prefix:
        return user.run([STUDY_PY, *args], folder)
    return run_study(args, folder)


@pytest.mark.parametrize("how", ["immutable (chattr +i)", "owned by root, run as nobody"])
def test_a_read_only_database_is_reported_on_and_never_written(
    tiny_study: TinyStudy, user: Nobody, how: str
) -> None:
    db, prefix = _read_only_copy(tiny_study, how, user)
    folder = db.parent
    try:
        before = _listing(folder)
        url = f"sqlite:///{db.name}"
        line = _one_line(_run_as(user, prefix, ["report", "--storage", url, "--study-name",
                                                "tiny", "--html", "r.html"], folder))  # fmt: skip
        assert f"{db.name} is read-only; report --html" in line, line
        assert _listing(folder) == before  # no r.html, artifacts/, -wal or -shm

        shown = _run_as(user, prefix, ["report", "--storage", url, "--study-name", "tiny"],
                        folder)  # fmt: skip
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "trial" in shown.stdout
        assert _listing(folder) == before  # reading it left nothing beside it either
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True)
        shutil.rmtree(folder)
