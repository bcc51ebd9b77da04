"""The sweep's worker processes: started, watched, stopped, and their deaths explained.

A worker ignores the terminal's SIGINT (the parent passes Ctrl-C on once, as SIGUSR1), dies with
its parent, and reports a full checkpoint disk or an interruption by its exit code; a worker
killed by a fatal signal has its trial recorded as the trial's own crash.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.storages import RDBStorage

from sweep import records as rec
from sweep.settings import SweepConfig
from sweep.store import interrupts, orphans
from sweep.store.reconnect import DatabaseUnavailable
from sweep.store.recovery import CheckpointWriteError, finished_count, mark_dead
from sweep.store.storage import StorageError

#: A worker's share of the trials: (config, index, log, n_trials).
RunWorker = Callable[..., None]


class WorkerError(Exception):
    """A worker process ended with an error (its own output says which)."""


class WorkerStartError(Exception):
    """The system refused to start a worker process (a limit on processes, or on memory);
    no worker of this command started a trial."""


#: Exit codes of a worker process that the parent understands.
WORKER_INTERRUPTED = 130
WORKER_CHECKPOINT_WRITE = 3
WORKER_DATABASE_LOST = 4
WORKER_STORAGE_ERROR = 5
#: The signals that stop a sweep, held back while workers start (``_start``).
_STOPS = frozenset({signal.SIGINT, signal.SIGTERM})
#: A sweep killed with SIGKILL leaves its workers' semaphores to multiprocessing's resource
#: tracker, which removes them and then warns in two lines ("There appear to be 7 leaked
#: semaphore objects to clean up at shutdown"): nothing for the user to do, and no one-line
#: message. The tracker is a process of its own that inherits the environment.
_QUIET_TRACKER = "ignore::UserWarning:multiprocessing.resource_tracker"
#: Deaths by these signals are the trial's own crash (they count against its retries).
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL,
                           signal.SIGFPE})  # fmt: skip


def _worker_main(run: RunWorker, config: SweepConfig, index: int, parent: int, n_trials: int,
                 errors: Any, go: Any, say: Any = None) -> None:  # fmt: skip
    # The parent passes Ctrl-C on (as SIGUSR1) exactly once; the terminal's own SIGINT, sent
    # to the whole process group, is ignored, or a worker could be interrupted twice while
    # it records the first interruption. SIGTERM sent to a worker stops it the same way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Raised only where it is safe: never inside a database write (sweep.store.interrupts).
    signal.signal(signal.SIGUSR1, interrupts.interrupt)
    signal.signal(signal.SIGTERM, interrupts.interrupt)
    try:  # from here on, a stop is an exit code, never a traceback
        try:  # (nested: a Ctrl-C deferred during a retry is raised in these handlers)
            # A worker never outlives the sweep that started it: if the parent dies (even by
            # SIGKILL), the kernel sends SIGUSR1, and the worker stops like on Ctrl-C.
            orphans.die_with_parent(signal.SIGUSR1, parent)
            go.wait()  # until every worker has started: if one cannot be, none starts a trial
            log = (lambda m: print(m, flush=True)) if say is None else say.send
            run(config, index, log=log, n_trials=n_trials)
        except CheckpointWriteError as exc:
            errors.put(str(exc))
            sys.exit(WORKER_CHECKPOINT_WRITE)
        except DatabaseUnavailable as exc:
            errors.put(str(exc))
            sys.exit(WORKER_DATABASE_LOST)
        except StorageError as exc:  # one line, as the parent's own (it was a traceback)
            errors.put(str(exc))
            sys.exit(WORKER_STORAGE_ERROR)
    except KeyboardInterrupt:
        sys.exit(WORKER_INTERRUPTED)


def run_processes(run: RunWorker, config: SweepConfig, study: optuna.Study,
                  storage: RDBStorage, n_trials: int,
                  relay: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """``config.workers`` processes, each running ``run`` (``sweep.runner.run_worker``: passed
    in, not imported, which would make the two modules import each other), until they end. A
    full checkpoint disk is raised as ``CheckpointWriteError``, an interrupted worker as
    ``KeyboardInterrupt``, a database out of reach for the reconnect window as
    ``DatabaseUnavailable`` (the trials of the workers it stopped failed as cut off, where the
    database is back to record it), any other failure as ``WorkerError``; a worker that cannot
    be started as ``WorkerStartError``, before any worker starts a trial. ``relay``: where the
    workers' messages go instead of their own stdout (the live view owns the terminal)."""
    readers: list = []
    procs, errors, _go = _start(run, config, n_trials, readers if relay else None)
    relaying = _relay(readers, relay) if relay else None
    try:
        dead = _join(procs, study, storage)
    except KeyboardInterrupt:
        _stop(procs)
        raise
    finally:
        if relaying is not None:
            relaying.join(timeout=5)
    codes = [p.exitcode for p in procs if p.exitcode]
    if WORKER_CHECKPOINT_WRITE in codes:
        raise CheckpointWriteError(errors.get())
    if WORKER_INTERRUPTED in codes:
        raise KeyboardInterrupt
    if WORKER_STORAGE_ERROR in codes:
        raise StorageError(errors.get())
    if WORKER_DATABASE_LOST in codes:
        message = errors.get()
        lost = [p.pid for p in procs if p.exitcode == WORKER_DATABASE_LOST and p.pid]
        for pid in lost:  # none left RUNNING for a process that stopped, if it can be helped
            mark_dead(study, storage, pid, rec.STOP_OWNER_DIED)
        raise DatabaseUnavailable(message)
    if codes:
        raise WorkerError(_failed(procs, dead, study, config))


def _relay(readers: list, log: Callable[[str], None]) -> threading.Thread:
    """A thread passing the workers' messages to ``log`` until every worker has closed its
    end. A pipe per worker, not one shared queue: a worker killed while writing would hold a
    shared queue's lock for ever, and the others would hang on their next message."""

    def run() -> None:
        while readers:
            for r in multiprocessing.connection.wait(readers):
                try:
                    log(r.recv())
                except (EOFError, OSError):
                    readers.remove(r)

    thread = threading.Thread(target=run, name="worker-messages", daemon=True)
    thread.start()
    return thread


def _start(run: RunWorker, config: SweepConfig, n_trials: int,
           readers: list | None = None) -> tuple[list, Any, Any]:  # fmt: skip
    """Start every worker, holding each back until all have started. Under a limit on
    processes (``ulimit -u``) the system refuses one at some point (BlockingIOError): then the
    ones started are stopped before they start a trial, and the user is told in one line.

    Returns the processes, the error queue and the start event. The caller must hold the
    event until the workers end: ``Process.start`` drops its arguments, and an event collected
    here unlinks its named semaphore before a spawned worker (slow on a busy machine) has
    unpickled it (each worker then died at once of ``FileNotFoundError`` in ``SemLock``)."""
    ctx = multiprocessing.get_context("spawn")
    given = os.environ.get("PYTHONWARNINGS", "")
    if _QUIET_TRACKER not in given:
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [given, _QUIET_TRACKER]))
    started: list = []
    try:
        with _stops_ignored_by_new_processes():
            errors, go = ctx.SimpleQueue(), ctx.Event()  # each may start a helper process
            for i in range(config.workers):
                reader, writer = ctx.Pipe(duplex=False) if readers is not None else (None, None)
                args = (run, config, i, os.getpid(), n_trials, errors, go, writer)
                p = ctx.Process(target=_worker_main, args=args)
                p.start()
                started.append(p)
                if reader is not None and readers is not None:
                    writer.close()  # the worker holds it: its exit ends the reader with EOF
                    readers.append(reader)
    except BaseException as exc:
        # Ctrl-C while starting them too: a worker left waiting for ``go`` would never end,
        # and this process would wait for it at exit.
        _stop(started)
        if not isinstance(exc, OSError):
            raise
        raise WorkerStartError(
            f"cannot start worker process {len(started) + 1} of {config.workers} "
            f"({type(exc).__name__}: {exc}): the system allows no more processes here "
            "(ulimit -u, memory); no trial was started: use a smaller --workers"
        ) from None
    go.set()
    return started, errors, go


@contextmanager
def _stops_ignored_by_new_processes() -> Iterator[None]:
    """Processes started inside start with Ctrl-C and SIGTERM ignored (an ignored signal stays
    ignored across exec, a handler does not): the terminal's Ctrl-C, sent to the whole group
    while a worker started up (before ``_worker_main`` ignores it), printed a KeyboardInterrupt
    traceback from its unpickling. This process blocks them meanwhile (Linux keeps a blocked
    signal pending even while ignored), so one that came is raised on leaving."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    handlers = {s: signal.signal(s, signal.SIG_IGN) for s in _STOPS}
    try:
        yield
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _join(procs: list, study: optuna.Study, storage: RDBStorage) -> dict[int, list[int]]:
    """Wait for the workers. One killed by a signal has its RUNNING trials failed at once (as
    its own crash for a fatal signal, as cut off for a kill from outside), so none is left
    RUNNING for a dead process; their numbers are returned by pid. One that could not write a
    checkpoint stops the others (the disk is full for them too)."""
    running = list(procs)
    dead: dict[int, list[int]] = {}
    while running:
        multiprocessing.connection.wait([p.sentinel for p in running])
        for p in [p for p in running if not p.is_alive()]:
            running.remove(p)
            p.join()
            if p.exitcode is not None and p.exitcode < 0 and p.pid is not None:
                crashed = -p.exitcode in CRASH_SIGNALS
                reason = rec.STOP_CRASHED if crashed else rec.STOP_OWNER_DIED
                dead[p.pid] = mark_dead(study, storage, p.pid, reason)
            if p.exitcode == WORKER_CHECKPOINT_WRITE:
                _stop(running)
                return dead
    return dead


def _failed(procs: list, dead: dict[int, list[int]], study: optuna.Study,
            config: SweepConfig) -> str:  # fmt: skip
    """One line for workers that ended badly: how each ended, which trials it took down, and
    what the next run does about them."""
    parts = []
    for p in procs:
        if not p.exitcode:
            continue
        how = (f"died of {signal.Signals(-p.exitcode).name}" if p.exitcode < 0
               else f"exited with status {p.exitcode}")  # fmt: skip
        trials = dead.get(p.pid)
        if trials:
            own = -p.exitcode in CRASH_SIGNALS
            what = "recorded as the trial's own crash" if own else "recorded as cut off"
            how += f" in trial {', '.join(map(str, trials))} ({what})"
        parts.append(f"worker process {p.pid} {how}")
    if finished_count(study) < config.trials:
        then = "run the same command again to continue the sweep"
    elif any(dead.values()):
        then = (f"the study has its {config.trials} finished trials; a run with a larger "
                "--trials continues the cut-off one")  # fmt: skip
    else:  # the worker died between trials: nothing was cut off (it said so, untrue)
        then = f"the study has its {config.trials} finished trials"
    return f"{'; '.join(parts)}; {then}"


def _stop(procs: list) -> None:
    for p in procs:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, signal.SIGUSR1)
    for p in procs:
        p.join()
