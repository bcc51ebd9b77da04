"""Opening the study's storage safely: bad input is refused before anything is written."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

#: Seconds a SQLite writer waits for another's lock before failing ("database is locked").
SQLITE_TIMEOUT_S = 60
#: A live worker writes a heartbeat this often; a RUNNING trial silent for GRACE_PERIOD_S is
#: taken as dead, failed, and queued again (continuing from its checkpoint).
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 40
SQLITE_MAGIC = b"SQLite format 3\x00"


class StorageError(Exception):
    """A storage URL or database that cannot be used; the message is one line for the user."""


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite URL, or None for other back ends and in-memory SQLite."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    return Path(u.database)


def check_url(url: str, must_exist: bool) -> None:
    """Refuse a URL that cannot work, without touching any file."""
    try:
        u = make_url(url)
        u.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise StorageError(f"cannot use storage URL {url!r}: {exc}") from None
    path = sqlite_path(url)
    if path is None:
        return
    if path.is_dir():
        raise StorageError(f"{path} is a directory, not a database file")
    if not path.exists():
        if must_exist:
            raise StorageError(f"no study database at {path}")
        if not path.parent.is_dir():
            raise StorageError(f"cannot create {path}: folder {path.parent} does not exist")
        return
    with path.open("rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head and head != SQLITE_MAGIC:
        raise StorageError(f"{path} is not a SQLite database")
    try:
        # Read-only probe: a file that is locked or damaged fails here, before Optuna runs.
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=SQLITE_TIMEOUT_S)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None


def open_storage(
    url: str, must_exist: bool = False, on_stale: Callable[..., None] | None = None
) -> RDBStorage:
    """An RDBStorage for ``url``; with ``on_stale``, heartbeats are on and a trial whose
    worker went silent for the grace period is failed and handed to ``on_stale``."""
    check_url(url, must_exist)
    kwargs: dict = {}
    if make_url(url).get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    else:
        kwargs["pool_pre_ping"] = True
    hb: dict = {}
    if on_stale is not None:
        hb = dict(
            heartbeat_interval=HEARTBEAT_INTERVAL_S,
            grace_period=GRACE_PERIOD_S,
            heartbeat_stale_trial_callback=on_stale,
        )
    try:
        storage = RDBStorage(url, engine_kwargs=kwargs, **hb)
    except Exception as exc:  # driver and server errors come in many types
        raise StorageError(f"cannot open storage {url!r}: {_one_line(exc)}") from None
    path = sqlite_path(url)
    if path is not None:
        _use_wal(path)
    return storage


def _use_wal(path: Path) -> None:
    """WAL lets optuna-dashboard (and other workers) read while a worker writes. The mode is
    stored in the file, so setting it once is enough."""
    con = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def load_study(url: str, name: str) -> optuna.Study:
    """An existing study, for reading; never creates a database or a study."""
    storage = open_storage(url, must_exist=True)
    names = optuna.study.get_all_study_names(storage)
    if name not in names:
        known = ", ".join(names) or "none"
        raise StorageError(f"no study named {name!r} in {url} (studies there: {known})")
    return optuna.load_study(study_name=name, storage=storage)
