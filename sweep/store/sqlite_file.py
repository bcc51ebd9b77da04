"""A SQLite database file looked at before it is used: damaged, not a database, locked, or
read-only, said in one line, and nothing beside it created or changed.

Why reading needs care: SQLite makes ``-wal`` and ``-shm`` files beside a WAL database for
every connection, and only a connection that can write the database removes them when it
closes. A read-only connection (a damaged file, a file we may not write) leaves them behind. So
a database with nobody in it (no ``-wal`` or ``-journal`` beside it, hence everything committed
is in the file) is read as immutable, which makes no file; a stamp of the file taken before and
after the read tells whether someone wrote it meanwhile, and the read is then done again. With a
``-wal`` or ``-journal`` there, someone has it open (or crashed in it), and it is read the
ordinary way, through their files, which creates nothing new.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from pathlib import Path
from urllib.parse import quote

#: Beside a database that someone has open, or that a crashed writer left.
_IN_USE = ("-wal", "-journal")
_READS = 3
#: Lines of ``PRAGMA integrity_check`` quoted in the message about a damaged file.
_QUOTED = 2


class FileProblem(Exception):
    """The database file cannot be used as it is (one line for the user)."""


def _in_use(path: Path) -> bool:
    return any(Path(f"{path}{suffix}").exists() for suffix in _IN_USE)


def _stamp(path: Path) -> tuple[int, int, bool]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, _in_use(path)


def _uri(path: Path, quiet: bool = True) -> str:
    immutable = "&immutable=1" if quiet and not _in_use(path) else ""
    return f"file:{quote(str(path.resolve()))}?mode=ro{immutable}"


def connect(path: Path, timeout: float = 5.0, quiet: bool = True) -> sqlite3.Connection:
    """A read-only connection that leaves no file beside the database (see the docstring);
    not ``quiet``: an ordinary read-only one, which waits for a writer's locks."""
    return sqlite3.connect(_uri(path, quiet), uri=True, timeout=timeout)


def _locked(path: Path, timeout: float) -> FileProblem:
    return FileProblem(f"{path} is locked by another program (waited {timeout:g} s); close it "
                       "or try again later")  # fmt: skip


def reader_url(path: Path) -> str:
    """The SQLAlchemy URL for reading a database this process may not write: read-only, so
    that it leaves no file beside it (an ordinary connection would)."""
    return f"sqlite:///{_uri(path)}&uri=true"


def check(path: Path, must_exist: bool, writes: str | None, timeout: float) -> set[str] | None:
    """Refuse a database file that cannot be used, changing nothing: ``writes`` names who must
    write to it. Its tables; None where it does not exist yet (and may be made)."""
    if path.is_dir():
        raise FileProblem(f"{path} is a directory, not a database file")
    if not path.exists():
        if must_exist:
            raise FileProblem(f"no study database at {path}")
        if not path.parent.is_dir():
            raise FileProblem(f"cannot create {path}: folder {path.parent} does not exist")
        if not os.access(path.parent, os.W_OK):
            raise FileProblem(f"cannot create {path}: folder {path.parent} is not writable")
        return None
    # The file is never opened here except through SQLite: closing any descriptor of it
    # would drop the POSIX locks SQLite holds on it in this process (SQLite's "how to corrupt
    # a database", 2.2), and another process could then delete the WAL under our feet.
    if writes:
        # access() is false for root too on immutable files and read-only mounts.
        if not os.access(path, os.W_OK):
            raise FileProblem(f"{path} is read-only; {writes} must write to it")
        if not os.access(path.parent, os.W_OK):
            raise FileProblem(f"folder {path.parent} is read-only; SQLite needs its journal there")
    found = tables(path, timeout)
    if writes:
        _lock_probe(path, timeout)
    return found


def tables(path: Path, timeout: float) -> set[str]:
    """The tables of a sound database; ``FileProblem`` for one that is damaged, is not a
    database, or is locked for longer than ``timeout``. A file that changed while it was read
    is read again; the last time the ordinary way, waiting for the writer's locks."""
    for attempt in range(_READS):
        before = _stamp(path)
        try:
            con = connect(path, timeout, quiet=attempt < _READS - 1)
            try:
                names = {r[0] for r in con.execute("SELECT name FROM sqlite_master "
                                                   "WHERE type = 'table'")}  # fmt: skip
                sound = con.execute("PRAGMA quick_check").fetchall() == [("ok",)]
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
                raise FileProblem(f"{path} is not a SQLite database") from None
            if "locked" in str(exc) or "busy" in str(exc):
                raise _locked(path, timeout) from None
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_CORRUPT":
                raise FileProblem(f"cannot use {path}: {exc}") from None
            sound = False
        if sound:
            return names
        if _stamp(path) == before:  # not a file caught while someone wrote it
            break
    raise FileProblem(damaged(path))


def damaged(path: Path) -> str:
    """What ``PRAGMA integrity_check`` says about ``path``, and how to recover, in one line."""
    found: list[str] = []
    try:
        con = connect(path)
        try:
            for (line,) in con.execute("PRAGMA integrity_check"):
                if not line.startswith("***"):  # "*** in database main ***": a heading
                    found.append(line)
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:  # it stops at the first page it cannot read
        found.append(str(exc))
    said = "; ".join(" ".join(line.split()) for line in found[:_QUOTED])
    if len(found) > _QUOTED:
        said += f" (and {len(found) - _QUOTED} more)"
    recovered = path.with_name(f"{path.stem}-recovered{path.suffix}")
    recover = f"sqlite3 {shlex.quote(str(path))} .recover | sqlite3 {shlex.quote(str(recovered))}"
    return (
        f"{path} is damaged (PRAGMA integrity_check: {said}); it was left as it is: "
        f"recover what can be read into a new file with {recover}, or use a backup"
    )


def _lock_probe(path: Path, timeout: float) -> None:
    """Take the write lock and give it back at once: a lock held longer than the timeout
    fails here, before Optuna runs."""
    uri = f"file:{quote(str(path.resolve()))}?mode=rw"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
        finally:
            con.close()
    except sqlite3.Error as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise _locked(path, timeout) from None
        raise FileProblem(f"cannot use {path}: {exc}") from None


def writable(path: Path) -> bool:
    """This process may write the database and make its journal beside it. (``os.access`` is
    false for root too on immutable files and read-only mounts.)"""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
