"""Riding out a database server that restarts, fails over or drops the connection.

Optuna's ``RDBStorage`` has no answer to a lost connection: SQLAlchemy's ``pool_pre_ping``
(set for PostgreSQL in ``sweep.store.storage``) replaces a connection that died while idle,
but a call made while the server is down or starting up fails at once, as a
``StorageInternalError``. Raised in a worker's trial, Optuna then wrote the trial's end to the
same unreachable server and died of its own ``UnboundLocalError`` on ``updated_state``
(issue 23: 14 tracebacks, two trials left RUNNING); raised in the heartbeat thread, the thread
died with a traceback and the trial ran on without heartbeats.

Here every storage call on a server database is retried (``tenacity``: exponential backoff
with jitter) for up to ``reconnect_window()`` seconds when the connection is lost, and the
process says so in one line and, once back, in one more. A heartbeat is never retried: a
lost one is skipped (the grace period is four intervals), so the thread never dies. When the
window passes, ``DatabaseUnavailable`` stops the process with one line, and the trials it was
running continue from their checkpoints on the next run. SQLite has no server to lose: its
calls are not retried here (its busy timeout covers a locked file).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy.exc
import tenacity
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from sweep import records as rec
from sweep.store.optuna_private import BACKEND_CALLS_BY_PRIVATE_NAME, RDB_LOGGER
from sweep.store.ownership import OwnedStorage

#: Seconds a storage call keeps trying to reach a server that went away before the process
#: gives up (a restart takes seconds, a failover to a standby well under a minute).
RECONNECT_S = 60.0
#: Overrides ``RECONNECT_S`` (for tests and the fault storm).
RECONNECT_ENV = "LSTM_SWEEP_RECONNECT_S"
#: The backoff between attempts: 0.25 s, doubling, at most 5 s, plus up to 0.5 s of jitter (so
#: the workers of several machines do not all knock at the same moment).
_FIRST_WAIT_S, _MOST_WAIT_S, _JITTER_S = 0.25, 5.0, 0.5


class DatabaseUnavailable(BaseException):
    """The database did not answer for the whole reconnect window; the message is one line.

    A ``BaseException``, as ``KeyboardInterrupt`` is: Optuna's trial loop catches every
    ``Exception`` from the objective and then records the trial's end in the database it
    cannot reach (that was the ``updated_state`` traceback). This passes through it: the
    process stops, and the next run takes its trials over."""


def seconds_from_env(name: str, default: float) -> float:
    """The environment variable ``name`` as a number of seconds >= 0, ``default`` when unset;
    any other value raises ``ValueError`` with a one-line message (ignoring it would leave the
    user believing it applies)."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a number of seconds >= 0, got {text!r}")
    return value


def reconnect_window() -> float:
    """The window; a bad ``LSTM_SWEEP_RECONNECT_S`` raises ``ValueError``
    (``sweep.store.storage`` refuses it in one line before anything is made)."""
    return seconds_from_env(RECONNECT_ENV, RECONNECT_S)


def lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` says the server could not be reached or the connection broke (server
    shut down, starting up, restarted, connection refused or reset, session terminated), as
    opposed to a call that was wrong: anywhere in its chain, since Optuna wraps the driver's
    error in ``StorageInternalError``, and a read it tries again in the broken session fails
    with ``PendingRollbackError``."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:  # the whole chain: Optuna retries a
        seen.add(id(link))  # failed read in the broken session, and that fails otherwise
        if isinstance(link, sqlalchemy.exc.DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        link = link.__cause__ or link.__context__
    return False


#: What a driver says when the server went away (in Optuna's warning, as text only).
_GONE = ("terminating connection", "server closed the connection", "connection failed",
         "consuming input failed", "connection is closed", "connection is lost",
         "Connection refused", "could not receive data", "could not send data",
         "the database system is")  # fmt: skip


def _not_a_lost_connection(record: logging.LogRecord) -> bool:
    """Optuna warns, in several lines, that a failed query makes it try a slower one ("Caught
    an error from sqlalchemy: ... Falling back to a slower alternative"): for a lost
    connection the retry here says it in one line instead."""
    text = record.getMessage()
    return not ("Falling back to a slower alternative" in text and any(g in text for g in _GONE))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _first_line(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, StorageInternalError) and exc.__cause__ else exc
    cause = getattr(cause, "orig", None) or cause  # the driver's own error, without SQL
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


class Outage:
    """A process's view of its database server: calls retried while the connection is lost
    (``run``), the loss said once and the return once, however many threads and calls meet
    them (the heartbeat's, nested calls)."""

    def __init__(self, where: str, say: Callable[[str], None] = _say) -> None:
        self.where, self.say = where, say
        self.window = reconnect_window()
        self._lock = threading.Lock()
        self._down_since: float | None = None

    def lost(self, exc: BaseException) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        self.say(f"lost the connection to the database {self.where} ({_first_line(exc)}); "
                 f"retrying for up to {self.window:.0f} s")  # fmt: skip

    def back(self) -> None:
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            self.say(f"reconnected to the database {self.where} after "
                     f"{time.monotonic() - since:.1f} s")  # fmt: skip

    def run(self, call: Callable[[], Any]) -> Any:
        """``call()``, tried again while the connection is lost, within the window; then
        ``DatabaseUnavailable``."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lost_connection),
            stop=tenacity.stop_after_delay(self.window),
            wait=tenacity.wait_exponential_jitter(_FIRST_WAIT_S, _MOST_WAIT_S, 2, _JITTER_S),
            before_sleep=lambda state: self.lost(state.outcome.exception()),
            reraise=True,
        )
        try:
            result = retrying(call)
        except Exception as exc:
            if not lost_connection(exc):
                raise
            self.lost(exc)  # a window of 0 retries nothing: said here
            raise DatabaseUnavailable(
                f"the database {self.where} did not answer for {self.window:.0f} s "
                f"({_first_line(exc)}); the sweep stops, and the trials it was running "
                "continue from their last checkpoints when you run the same command again"
            ) from None
        if self._down_since is not None:
            self.back()
        return result


class ReconnectingStorage(OwnedStorage):
    """``OwnedStorage`` whose calls ride out a lost connection to a database server (see the
    module's docstring). ``say`` receives its one-line notices (the runner sets it, to prefix
    the worker's name)."""

    _reconnects = False  # until the engine is made: set in __init__

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reconnects = self.engine.dialect.name != "sqlite"
        self.outage = Outage(self.engine.url.render_as_string(hide_password=True))
        rdb_log = logging.getLogger(RDB_LOGGER)
        if self._reconnects and _not_a_lost_connection not in rdb_log.filters:
            rdb_log.addFilter(_not_a_lost_connection)

    @property
    def say(self) -> Callable[[str], None]:
        return self.outage.say

    @say.setter
    def say(self, say: Callable[[str], None]) -> None:
        self.outage.say = say

    def _retrying(self, call: Callable[[], Any]) -> Any:
        return self.outage.run(call)

    # --- calls with something to check after a retry ----------------------------------------
    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        if not self._reconnects:
            return super().set_trial_state_values(trial_id, state, values)
        attempts = 0

        def once() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                return OwnedStorage.set_trial_state_values(self, trial_id, state, values)
            except UpdateFinishedTrialError:
                # The attempt before may have committed with only its answer lost.
                if attempts > 1 and self.get_trial(trial_id).state == state:
                    return True
                raise

        done = self._retrying(once)
        if not done and attempts > 1 and state == TrialState.RUNNING:
            # A claim of a WAITING trial whose answer was lost: ours if it carries our stamp.
            mine = self.stamp()[rec.WORKER]
            return self.get_trial(trial_id).user_attrs.get(rec.WORKER) == mine
        return done

    def record_heartbeat(self, trial_id: int) -> None:
        """One try: a heartbeat lost to an outage is skipped, never retried (the grace period
        is four intervals) and never raised (the thread would die with a traceback, and the
        trial run on without heartbeats)."""
        try:
            super().record_heartbeat(trial_id)
        except (StorageInternalError, sqlalchemy.exc.SQLAlchemyError) as exc:
            if self._reconnects and lost_connection(exc):
                self.outage.lost(exc)
            return  # another error: the next beat tries again; the trial's writes report it
        if self._reconnects:
            self.outage.back()


def _retried(name: str) -> Callable[..., Any]:
    method = getattr(OwnedStorage, name)

    @functools.wraps(method)
    def call(self: ReconnectingStorage, *args: Any, **kwargs: Any) -> Any:
        if not self._reconnects:
            return method(self, *args, **kwargs)
        return self._retrying(lambda: method(self, *args, **kwargs))

    return call


#: Every call Optuna makes on a storage that reaches the database: the public API of
#: ``BaseStorage`` and the backend methods Optuna's trial cache calls by private names.
#: (Not wrapped here: two that never reach it, and one wrapped above with its own check.)
_NOT_WRAPPED = {"remove_session", "check_trial_is_updatable", "set_trial_state_values"}
STORAGE_CALLS = tuple(
    name for name, value in vars(BaseStorage).items()
    if not name.startswith("_") and callable(value) and name not in _NOT_WRAPPED
) + BACKEND_CALLS_BY_PRIVATE_NAME  # fmt: skip

for _name in STORAGE_CALLS:
    setattr(ReconnectingStorage, _name, _retried(_name))
