"""An SQLite study database is made whole or not at all.

Optuna makes its tables one statement at a time: a run killed (or out of disk) half-way used
to leave a file that every later run failed on ("no such table: ..."). Here the tables are
made in a temporary file beside the database and renamed into place, so the database either
does not exist or is complete. A half-made file left by an older version (Optuna tables only,
some missing or without a version row, and no study in it) is recognised and made again.
Callers hold the creation lock of ``sweep.store.storage`` (one process at a time per folder).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from optuna.storages import RDBStorage

from sweep.store import sqlite_file
from sweep.store.optuna_private import optuna_tables

#: Besides Optuna's own tables (see ``optuna_tables``), tables SQLite or Alembic may add.
_OTHER = frozenset({"alembic_version", "sqlite_sequence"})
_SIDE_FILES = ("-wal", "-shm", "-journal")


def _tables(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def complete(path: Path, tables: set[str] | None = None) -> bool:
    """Every Optuna table is there and the version row was written (the last step)."""
    con = sqlite_file.connect(path)  # a reader may not write: it must leave no -wal behind
    try:
        tables = _tables(con) if tables is None else tables
        if not optuna_tables() <= tables:
            return False
        return con.execute("SELECT count(*) FROM version_info").fetchone()[0] > 0
    finally:
        con.close()


def half_made(path: Path) -> bool:
    """A file that an interrupted table creation left: empty, or Optuna tables only, not all
    of them (or no version row), and no study. Anything else is left alone."""
    if path.stat().st_size == 0:
        return True
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = _tables(con)
        if not tables <= optuna_tables() | _OTHER:
            return False  # someone else's tables: not ours to remove
        if "studies" in tables and con.execute("SELECT count(*) FROM studies").fetchone()[0]:
            return False  # holds a study: never thrown away
    finally:
        con.close()
    return not complete(path)


def _remove(path: Path) -> None:
    for p in (path, *(Path(f"{path}{s}") for s in _SIDE_FILES)):
        p.unlink(missing_ok=True)


def ensure(path: Path, url_kwargs: dict) -> None:
    """Make ``path`` a complete, empty Optuna database unless it already is one (or is a file
    that is not ours to touch)."""
    for stale in path.parent.glob(f".{path.name}.creating-*"):  # left by a killed run
        stale.unlink(missing_ok=True)
    if path.exists():
        if not half_made(path):
            return
        _remove(path)
    tmp = path.parent / f".{path.name}.creating-{os.getpid()}"
    try:
        storage = RDBStorage(f"sqlite:///{tmp.resolve()}", engine_kwargs=url_kwargs)
        storage.engine.dispose()
        con = sqlite3.connect(tmp, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself survives a power cut
        finally:
            os.close(fd)
    finally:
        _remove(tmp)
