"""Ctrl-C and SIGTERM delivered only where they are safe to raise.

Python raises a signal handler's exception at whatever bytecode runs at that moment. Raised
inside a database write (SQLAlchemy, Optuna's storage), it left sessions half-closed
(``sqlite3.ProgrammingError: Cannot operate on a closed database``, Optuna's
``UnboundLocalError`` on ``updated_state``); inside Optuna's ``tell`` after the objective had
returned, a trial stayed RUNNING; inside a finaliser or a weakref callback it was printed as
"Exception ignored" and lost, so the worker never stopped and the sweep hung waiting for it.

``deferring(raise_it)`` wraps a handler: where the interrupted code is one of those places, it
raises at the first line of our own code that runs once the code has left it. A long stretch
there (a numba compile, about 9 s on a new machine) delays the stop by as long.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

#: This project's files (sweep/, model/, study.py, tests/, bench/): the places where an
#: interrupt is ours to handle. This file is sweep/store/interrupts.py: the root is two up
#: (tests/store/test_interrupts.py fails, rather than hangs, if that ever changes).
_OURS = str(Path(__file__).resolve().parents[2]) + os.sep
#: Code that must never be cut off half-way, wherever it runs: database writes (whose
#: half-done state breaks the connection and Optuna's bookkeeping), output and compiles.
_NEVER = ("/sqlalchemy/", "/optuna/storages/", "/sqlite3/", "/psycopg", "/logging/",
          "/llvmlite/", "/numba/")  # fmt: skip
#: Further out than our innermost frame, only Optuna's storage and the drivers matter (our
#: code runs inside Optuna's loop, and inside its storage where a trial is stamped).
_NEVER_AROUND = ("/sqlalchemy/", "/optuna/storages/", "/sqlite3/", "/psycopg")


def _ours(path: str) -> bool:
    return path.startswith(_OURS) and os.sep + "site-packages" + os.sep not in path


def safe(frame: FrameType | None) -> bool:
    """Whether an exception may be raised in ``frame`` (the code a signal interrupted).

    Not: inside a finaliser or weakref callback anywhere on the stack (its exception would be
    printed and lost), inside anything in ``_NEVER`` or any of Optuna reached from our code's
    frames inward (its trial loop records a trial's end there), or inside a storage call."""
    inner = True  # until our innermost frame is passed
    while frame is not None:
        path = frame.f_code.co_filename
        if frame.f_code.co_name == "__del__" or path.endswith("weakref.py"):
            return False
        if inner and _ours(path):
            inner = False
        if inner and ("/optuna/" in path or any(p in path for p in _NEVER)):
            return False
        if not inner and any(p in path for p in _NEVER_AROUND):
            return False
        frame = frame.f_back
    return True


def deferring(raise_it: Callable[[int, FrameType | None], None]) -> Callable[..., None]:
    """A signal handler that calls ``raise_it`` (which raises) at once where that is safe,
    and otherwise at the first line of our code that runs where it is (``_defer``)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if safe(frame):
            raise_it(signum, frame)
        elif not _pending:  # one stop pending is enough
            _pending.append(lambda: raise_it(signum, frame))
            _defer(frame)

    return handler


#: The stop waiting for a safe moment (at most one).
_pending: list[Callable[[], None]] = []


def _defer(frame: FrameType | None) -> None:
    """Trace this thread until one of our lines runs at a safe moment, and raise there. (A
    signal sent again a moment later lands in the storage again where most time is spent
    there: a loop of writes was never interrupted.) Tracing costs only while deferred."""
    while frame is not None:  # the frames running now: their next lines are traced too
        if _ours(frame.f_code.co_filename):
            frame.f_trace = _trace_lines
        frame = frame.f_back
    sys.settrace(_trace_calls)


def _trace_calls(frame: FrameType, _event: str, _arg: object) -> object:
    return _trace_lines if _ours(frame.f_code.co_filename) else None


def _trace_lines(frame: FrameType, event: str, _arg: object) -> object:
    if not _pending:  # raised already (a frame traced then, resumed now)
        return None
    if event == "line" and safe(frame):
        sys.settrace(None)
        f: FrameType | None = frame
        while f is not None:
            f.f_trace = None
            f = f.f_back
        _pending.pop()()
    return _trace_lines


def _keyboard_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


#: Raises ``KeyboardInterrupt`` at the first safe moment.
interrupt = deferring(_keyboard_interrupt)
