"""Opening the study's storage safely: bad input is refused before anything is written.
(One job, about 300 lines: every storage URL, SQLite setting and storage message is here.)

SQLite settings, and why:

- WAL journal: readers (optuna-dashboard, ``study.py report``, other workers) never block the
  writer and the writer never blocks them; with the default rollback journal a dashboard that
  polls the file makes the sweep's writes fail with "database is locked".
- A busy timeout of ``SQLITE_TIMEOUT_S`` (60 s): a worker waits that long for another's write
  lock instead of failing at once. Optuna's transactions last milliseconds, so only another
  program holding the file for a minute makes a worker give up (``LSTM_SWEEP_SQLITE_TIMEOUT``
  overrides it, for tests).
- Every transaction starts with ``BEGIN IMMEDIATE``: Optuna reads a row and then updates it
  (``SELECT ... FOR UPDATE``, which SQLite ignores), and the sqlite3 driver would only start
  the transaction at the update. Taking the write lock first makes Optuna's "claim a WAITING
  trial" and "fail a stale trial" atomic, so two workers never run the same trial.
- Creating the tables is serialised (a lock on the database's folder; on PostgreSQL an
  advisory lock), so workers started at once on a new database do not collide.
- The database file is only ever opened through SQLite (see ``sweep.store.sqlite_file``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from sweep.store import creation, sqlite_file
from sweep.store.reconnect import (
    Outage,
    ReconnectingStorage,
    reconnect_window,
    seconds_from_env,
)

#: Seconds a SQLite writer waits for another's lock before failing ("database is locked").
SQLITE_TIMEOUT_S = 60.0
TIMEOUT_ENV = "LSTM_SWEEP_SQLITE_TIMEOUT"
#: A live worker writes a heartbeat this often; a RUNNING trial silent for GRACE_PERIOD_S is
#: taken as dead, failed, and queued again (continuing from its checkpoint).
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 40
#: Overrides the heartbeat's interval, in whole seconds (for tests and the fault storm); the
#: grace period stays four intervals.
HEARTBEAT_ENV = "LSTM_SWEEP_HEARTBEAT_S"
PG_CONNECT_TIMEOUT_S = 10
#: Any fixed number: the PostgreSQL advisory lock that serialises creating the tables.
_PG_INIT_LOCK = 0x15_7A_5E_E9


class StorageError(Exception):
    """A storage URL or database that cannot be used; the message is one line for the user."""


def sqlite_timeout() -> float:
    """The busy timeout; a ``LSTM_SWEEP_SQLITE_TIMEOUT`` that is not a number of seconds is
    refused (ignoring it would leave the user believing it applies)."""
    try:
        return seconds_from_env(TIMEOUT_ENV, SQLITE_TIMEOUT_S)
    except ValueError as exc:
        raise StorageError(str(exc)) from None


def heartbeat() -> tuple[int, int]:
    """(interval, grace period) in seconds; a ``LSTM_SWEEP_HEARTBEAT_S`` that is not a whole
    number of seconds >= 1 is refused (Optuna takes whole seconds only)."""
    text = os.environ.get(HEARTBEAT_ENV)
    if text is None:
        return HEARTBEAT_INTERVAL_S, GRACE_PERIOD_S
    if not (text.strip().isdigit() and int(text) >= 1):
        raise StorageError(f"{HEARTBEAT_ENV} must be a whole number of seconds >= 1, "
                           f"got {text!r}")  # fmt: skip
    interval = int(text)
    return interval, interval * GRACE_PERIOD_S // HEARTBEAT_INTERVAL_S


def masked(url: str) -> str:
    """``url`` as shown to the user: with its password, if any, replaced by ``***``."""
    try:
        u = make_url(url)
    except ArgumentError:
        return url
    return u.render_as_string(hide_password=True) if u.password else url


def scrub(text: str, url: str) -> str:
    """``text`` (an error message that may quote the URL or its parts) without the password."""
    try:
        password = make_url(url).password
    except ArgumentError:
        return text
    return text.replace(url, masked(url)).replace(str(password), "***") if password else text


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite URL, or None for other back ends and in-memory SQLite."""
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"invalid storage URL {masked(url)!r}: {_one_line(exc)}") from None
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    return Path(u.database)


def resolve_url(url: str) -> str:
    """``url`` as it is. URLs are used as written, so that a URL this tool opens opens in
    optuna-dashboard and the ``optuna`` CLI too (they pick the driver SQLAlchemy names for it:
    requirements.txt installs psycopg 3 and psycopg2 for ``postgresql://``). Kept for callers
    of the time it named psycopg2 for them (``bench.kill_storm``)."""
    return url


def check_url(url: str, must_exist: bool, writes: str | None = None) -> None:
    """Refuse a URL that cannot work, without changing any file. ``must_exist`` is for
    readers; ``writes`` names who must write to the database (the sweep, unless
    ``must_exist``): it must then be writable and not locked by another program."""
    writes = writes or (None if must_exist else "the sweep")
    heartbeat()  # a bad LSTM_SWEEP_HEARTBEAT_S is refused before anything is made
    try:
        make_url(url).get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise StorageError(f"invalid storage URL {masked(url)!r}: {_one_line(exc)}") from None
    except ImportError as exc:
        raise StorageError(
            f"cannot use storage URL {masked(url)!r}: its database driver is not installed "
            f"({exc}; pip install -r requirements.txt)"
        ) from None
    if make_url(url).get_backend_name() == "sqlite":
        sqlite_timeout()  # a bad LSTM_SWEEP_SQLITE_TIMEOUT is refused before anything is made
    else:
        try:
            reconnect_window()  # a bad LSTM_SWEEP_RECONNECT_S, likewise
        except ValueError as exc:
            raise StorageError(str(exc)) from None
    path = sqlite_path(url)
    if path is None:
        return
    try:
        tables = sqlite_file.check(path, must_exist, writes, sqlite_timeout())
    except sqlite_file.FileProblem as exc:
        raise StorageError(str(exc)) from None
    if tables is not None and must_exist and not creation.complete(path, tables):
        raise StorageError(f"{path} holds no Optuna study (its tables were never made)")


def open_storage(
    url: str,
    must_exist: bool = False,
    on_stale: Callable[..., None] | None = None,
    writes: str | None = None,
    say: Callable[[str], None] | None = None,
) -> ReconnectingStorage:
    """An RDBStorage for ``url`` (riding out a lost connection to a server: see
    ``sweep.store.reconnect``); with ``on_stale``, heartbeats are on and a trial whose
    worker went silent for the grace period is failed and handed to ``on_stale``.
    ``must_exist`` opens an existing database for reading: nothing is created or changed;
    ``writes`` (who will write to it, see ``check_url``) for writing too. ``say``: for a
    worker of a sweep under way, where its notices of a lost connection go; opening rides out
    a server restart too (a command that starts, instead, is told at once that the server
    does not answer)."""
    check_url(url, must_exist, writes)
    path = sqlite_path(url)
    shown, u, engine_url = masked(url), make_url(url), url
    if path is not None and must_exist and not writes and not sqlite_file.writable(path):
        # An ordinary connection would leave -wal and -shm files it may not remove.
        engine_url = sqlite_file.reader_url(path)
    kwargs: dict = {}
    if u.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": sqlite_timeout()}
    else:
        kwargs["pool_pre_ping"] = True
        if u.get_backend_name() == "postgresql":
            # Without a timeout, an unreachable server hangs the start-up instead of failing.
            kwargs.update(_pg_connect_args(url))
    hb: dict = {}
    if on_stale is not None:
        interval, grace = heartbeat()
        hb = dict(
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=on_stale,
        )

    def make() -> ReconnectingStorage:
        with _init_lock(url), warnings.catch_warnings():
            # Heartbeats are "experimental" in Optuna; the warning would only confuse users.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if path is not None and not must_exist:
                # Made whole in a temporary file and renamed into place: a run killed (or out
                # of disk) while making the tables leaves no half-made database behind.
                creation.ensure(path, kwargs)
                _use_wal(path)
            return ReconnectingStorage(engine_url, engine_kwargs=kwargs,
                                       skip_table_creation=must_exist, **hb)  # fmt: skip

    try:
        if say is not None and path is None:
            storage = Outage(shown, say).run(make)
        else:
            storage = make()
    except StorageError:
        raise
    except Exception as exc:  # driver and server errors come in many types
        raise StorageError(
            scrub(f"cannot open storage {shown!r}: {_one_line(exc)}", url)
        ) from None
    if path is not None and not must_exist:
        _begin_immediate(storage.engine)
    if say is not None:
        storage.say = say
    return storage


@contextmanager
def _init_lock(url: str) -> Iterator[None]:
    """Serialise creating the tables: Optuna's table and version set-up is not safe when
    several workers start at once on a new database."""
    path = sqlite_path(url)
    if path is not None:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            deadline = time.monotonic() + sqlite_timeout()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StorageError(f"timed out waiting to open {path}") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # also releases the lock
    elif make_url(url).get_backend_name() == "postgresql":
        engine = sqlalchemy.create_engine(url, poolclass=NullPool, **_pg_connect_args(url))
        try:
            with engine.connect() as con:
                con.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_INIT_LOCK})")
                try:
                    yield
                finally:
                    con.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_INIT_LOCK})")
        finally:
            engine.dispose()
    else:
        yield


def _pg_connect_args(url: str) -> dict:
    if make_url(url).get_driver_name().startswith("psycopg"):
        return {"connect_args": {"connect_timeout": PG_CONNECT_TIMEOUT_S}}
    return {}


def _begin_immediate(engine: sqlalchemy.engine.Engine) -> None:
    """Start every transaction with BEGIN IMMEDIATE (SQLAlchemy's documented pysqlite recipe:
    the driver's own transaction handling is switched off and SQLAlchemy emits the BEGIN)."""

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_con: sqlite3.Connection, _record: object) -> None:
        dbapi_con.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(con: sqlalchemy.engine.Connection) -> None:
        con.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made while Optuna set up the tables lack the hooks


def _use_wal(path: Path) -> None:
    """WAL lets optuna-dashboard (and other workers) read while a worker writes. The mode is
    stored in the file, so setting it once is enough; it is left alone when already set."""
    con = sqlite3.connect(path, timeout=sqlite_timeout(), isolation_level=None)
    try:
        if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def load_study(url: str, name: str, writes: str | None = None) -> optuna.Study:
    """An existing study, for reading (``writes``: and for writing, by whom); never creates
    a database or a study."""
    storage = open_storage(url, must_exist=True, writes=writes)
    try:
        names = optuna.study.get_all_study_names(storage)
    except Exception as exc:
        raise StorageError(scrub(f"cannot read the studies in {masked(url)} "
                                 f"({_one_line(exc)})", url)) from None  # fmt: skip
    if name not in names:
        known = ", ".join(names) or "none"
        raise StorageError(f"no study named {name!r} in {masked(url)} (studies there: {known})")
    return optuna.load_study(study_name=name, storage=storage)
