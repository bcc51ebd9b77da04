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
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import RDBStorage

from sweep import orphans
from sweep import records as rec
from sweep.recovery import CheckpointWriteError, finished_count, mark_dead
from sweep.settings import SweepConfig

#: A worker's share of the trials: (config, index, log, n_trials).
RunWorker = Callable[..., None]


class WorkerError(Exception):
    """A worker process ended with an error (its own output says which)."""


class WorkerStartError(Exception):
    """The system refused to start a worker process (a limit on processes, or on memory);
    no worker of this command started a trial."""


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


#: Exit codes of a worker process that the parent understands.
WORKER_INTERRUPTED = 130
WORKER_CHECKPOINT_WRITE = 3
#: Deaths by these signals are the trial's own crash (they count against its retries).
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL,
                           signal.SIGFPE})  # fmt: skip


def _worker_main(run: RunWorker, config: SweepConfig, index: int, parent: int, n_trials: int,
                 errors: Any, go: Any) -> None:  # fmt: skip
    # The parent passes Ctrl-C on (as SIGUSR1) exactly once; the terminal's own SIGINT, sent
    # to the whole process group, is ignored, or a worker could be interrupted twice while
    # it records the first interruption. SIGTERM sent to a worker stops it the same way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    # A worker never outlives the sweep that started it: if the parent dies (even by
    # SIGKILL), the kernel sends SIGUSR1, and the worker stops like on Ctrl-C.
    orphans.die_with_parent(signal.SIGUSR1, parent)
    try:
        go.wait()  # until every worker has started: if one cannot be, none starts a trial
        run(config, index, log=lambda m: print(m, flush=True), n_trials=n_trials)
    except KeyboardInterrupt:
        sys.exit(WORKER_INTERRUPTED)
    except CheckpointWriteError as exc:
        errors.put(str(exc))
        sys.exit(WORKER_CHECKPOINT_WRITE)


def run_processes(run: RunWorker, config: SweepConfig, study: optuna.Study,
                  storage: RDBStorage, n_trials: int) -> None:  # fmt: skip
    """``config.workers`` processes, each running ``run`` (``sweep.runner.run_worker``: passed
    in, not imported, which would make the two modules import each other), until they end. A
    full checkpoint disk is raised as ``CheckpointWriteError``, an interrupted worker as
    ``KeyboardInterrupt``, any other failure as ``WorkerError``; a worker that cannot be started
    as ``WorkerStartError``, before any worker starts a trial."""
    procs, errors = _start(run, config, n_trials)
    try:
        dead = _join(procs, study, storage)
    except KeyboardInterrupt:
        _stop(procs)
        raise
    codes = [p.exitcode for p in procs if p.exitcode]
    if WORKER_CHECKPOINT_WRITE in codes:
        raise CheckpointWriteError(errors.get())
    if WORKER_INTERRUPTED in codes:
        raise KeyboardInterrupt
    if codes:
        raise WorkerError(_failed(procs, dead, study, config))


def _start(run: RunWorker, config: SweepConfig, n_trials: int) -> tuple[list, Any]:
    """Start every worker, holding each back until all have started. Under a limit on
    processes (``ulimit -u``) the system refuses one at some point (BlockingIOError): then the
    ones started are stopped before they start a trial, and the user is told in one line."""
    ctx = multiprocessing.get_context("spawn")
    started: list = []
    try:
        errors, go = ctx.SimpleQueue(), ctx.Event()  # each may start a helper process
        for i in range(config.workers):
            p = ctx.Process(target=_worker_main,
                            args=(run, config, i, os.getpid(), n_trials, errors, go))  # fmt: skip
            p.start()
            started.append(p)
    except OSError as exc:
        _stop(started)
        raise WorkerStartError(
            f"cannot start worker process {len(started) + 1} of {config.workers} "
            f"({type(exc).__name__}: {exc}): the system allows no more processes here "
            "(ulimit -u, memory); no trial was started: use a smaller --workers"
        ) from None
    go.set()
    return started, errors


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
    else:
        then = (f"the study has its {config.trials} finished trials; a run with a larger "
                "--trials continues the cut-off one")  # fmt: skip
    return f"{'; '.join(parts)}; {then}"


def _stop(procs: list) -> None:
    for p in procs:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, signal.SIGUSR1)
    for p in procs:
        p.join()
