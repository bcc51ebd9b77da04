"""Running a sweep's trials in one or more worker processes, and resuming cut-off ones."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from optuna_dashboard import save_note

from sweep import liveness, orphans
from sweep.admission import SurplusTrial
from sweep.artifacts import attach_after_sweep, default_artifact_dir, open_store
from sweep.delivery import Sets
from sweep.identity import open_study, open_study_and_storage
from sweep.notes import study_note
from sweep.objective import Objective
from sweep.recovery import (
    FINISHED,
    CheckpointWriteError,
    fail_dead,
    mark_crashed,
    occupancy,
    recover,
)
from sweep.report import collect
from sweep.report_text import conclusion
from sweep.settings import SweepConfig
from sweep.storage import StorageError, sqlite_path


class WorkerError(Exception):
    """A worker process ended with an error (its own output says which)."""


def checkpoint_root(config: SweepConfig) -> Path:
    if config.checkpoint_dir:
        return Path(config.checkpoint_dir)
    db = sqlite_path(config.storage)
    return (db.parent if db is not None else Path.cwd()) / "checkpoints"


def check_writable_folder(folder: Path) -> None:
    """Refuse a checkpoint folder that cannot be created or written, without creating it."""
    probe = folder.resolve()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise StorageError(f"cannot write checkpoints under {folder}: {probe} is not a "
                           "writable folder")  # fmt: skip


def occupied(study: optuna.Study) -> int:
    """Finished trials plus those running in live processes."""
    done, running = occupancy(study.get_trials(deepcopy=False))
    return done + running


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def worker_seed(config: SweepConfig, index: int, n_trials: int) -> int:
    """The sampler's seed of worker ``index``, started when the study held ``n_trials``.

    ``--sampler-seed N``: a function of N, the worker index and the study's size at the start
    of the command, so the same commands on the same study propose the same values (and a
    resumed sweep does not repeat the proposals of its first run). By default (-1) the process
    id is mixed in too: workers started at once, even by separate commands, would otherwise
    propose the same learning rates (Optuna's advice: do not fix the sampler's seed in
    distributed optimisation). Weight initialisation keeps ``--seed``, so a trial's numbers
    depend on its learning rate only."""
    if config.sampler_seed >= 0:
        entropy = [config.sampler_seed, index, n_trials]
    else:
        entropy = [config.seed, index, n_trials, os.getpid()]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def run_worker(
    config: SweepConfig,
    index: int = 0,
    log: Callable[[str], None] = print,
    n_trials: int | None = None,
) -> None:
    """One process's share: trials until the study holds ``config.trials`` finished ones.
    ``n_trials``: the study's size when the command started (seeds the sampler)."""
    if config.training_method.uses_torch(config.settings):
        # Only these need torch (~200 MB a process); one core per worker: workers, not
        # threads, use the machine.
        import torch

        torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna.study._optimize").addFilter(_expected_failures)
    study = open_study(config)
    if occupied(study) >= config.trials:
        return
    if n_trials is None:
        n_trials = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=worker_seed(config, index, n_trials))
    prefix = f"[worker {index}] " if config.workers > 1 else ""
    store = open_store(default_artifact_dir(config.storage))
    objective = Objective(config, Sets.build(config), checkpoint_root(config),
                          log=lambda m: log(prefix + m), store=store)  # fmt: skip

    def stop_when_full(study: optuna.Study, _trial: FrozenTrial) -> None:
        # Counts the trials other workers are running too, so that no worker starts a
        # trial the study will not need (MaxTrialsCallback counts finished trials only).
        if occupied(study) >= config.trials:
            study.stop()

    study.optimize(objective, callbacks=[note_study, stop_when_full], catch=(SurplusTrial,),
                   gc_after_trial=False)  # fmt: skip


def note_study(study: optuna.Study, _trial: FrozenTrial) -> None:
    """Keep the study's optuna-dashboard note current: its conclusion so far."""
    summary = collect(study)
    save_note(study, study_note(f"Study {study.study_name}", conclusion(summary)))


def _expected_failures(record: logging.LogRecord) -> bool:
    """Optuna logs every failed trial with its traceback, then again as "failed with value
    None"; Ctrl-C and a trial refused as not needed are expected ends, already explained by
    the sweep's own output. (Other failures keep their first record, with the traceback.)"""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, KeyboardInterrupt | SurplusTrial | CheckpointWriteError):
        return False
    return not record.getMessage().endswith("failed with value None.")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


#: Exit codes of a worker process that the parent understands.
WORKER_INTERRUPTED = 130
WORKER_CHECKPOINT_WRITE = 3
#: Deaths by these signals are the trial's own crash (they count against its retries).
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL,
                           signal.SIGFPE})  # fmt: skip


def _worker_main(config: SweepConfig, index: int, parent: int, n_trials: int,
                 errors: Any) -> None:  # fmt: skip
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
        run_worker(config, index, log=lambda m: print(m, flush=True), n_trials=n_trials)
    except KeyboardInterrupt:
        sys.exit(WORKER_INTERRUPTED)
    except CheckpointWriteError as exc:
        errors.put(str(exc))
        sys.exit(WORKER_CHECKPOINT_WRITE)


def run_sweep(config: SweepConfig, log: Callable[[str], None] = print) -> optuna.Study:
    """Open (or resume) the study, recover cut-off trials, and run the workers.

    A RUNNING trial that names no process (asked by another program, which may have died)
    cannot be judged until it is ``liveness.unowned_grace()`` old: if the study ends short
    of ``--trials`` because of one, the sweep waits for it, then takes it over."""
    check_writable_folder(checkpoint_root(config))
    study, storage = open_study_and_storage(config)
    n_trials = len(study.get_trials(deepcopy=False))
    while True:
        done = finished_count(study)
        if done >= config.trials:
            # Full: trials cut off earlier are not queued again (a copy nobody runs would wait
            # forever); a run with a larger --trials continues them. None stays RUNNING.
            fail_dead(study, storage)
            log(f"study {config.study_name!r} already holds {done} finished trials; "
                "nothing to run")  # fmt: skip
            break  # still attach the best model: a run that ended badly may not have
        queued = recover(study, storage)
        if queued:
            log(f"continuing trials cut off earlier: {', '.join(map(str, queued))}")
        log(f"study {config.study_name!r}: {done} of {config.trials} trials finished; "
            f"running with {config.workers} worker(s)")  # fmt: skip
        if config.workers == 1:
            run_worker(config, 0, log, n_trials)
        else:
            _run_processes(config, study, storage, n_trials)
        if finished_count(study) >= config.trials:
            # Full; but a trial asked by a process that died at once may still have looked
            # young when this run began: judge it before leaving, so none stays RUNNING.
            if _wait_for_unowned(study, log, "judging them"):
                fail_dead(study, storage)
            break
        if not _wait_for_unowned(study, log):
            break
    # The best model, where optuna-dashboard lists it (beside the database, for SQLite).
    attach_after_sweep(study, config.storage, log)
    return study


def _wait_for_unowned(study: optuna.Study, log: Callable[[str], None],
                      what: str = "taking them over") -> bool:  # fmt: skip
    """Sleep until every RUNNING trial that names no process is old enough to be judged;
    False when there is none (the study is short because of live workers elsewhere)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    ages = {t.number: liveness.unowned_age(t) for t in trials}
    ages = {n: a for n, a in ages.items() if a is not None}
    if not ages:
        return False
    wait = max(0.0, liveness.unowned_grace() - min(ages.values())) + 0.1
    log(f"trial(s) {', '.join(map(str, sorted(ages)))} running in no known process; "
        f"{what} in {wait:.0f} s unless their process shows itself")  # fmt: skip
    time.sleep(wait)
    return True


def _run_processes(
    config: SweepConfig, study: optuna.Study, storage: RDBStorage, n_trials: int
) -> None:
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.SimpleQueue()
    procs = [
        ctx.Process(target=_worker_main, args=(config, i, os.getpid(), n_trials, errors))
        for i in range(config.workers)
    ]
    for p in procs:
        p.start()
    try:
        crashed = _join(procs, study, storage)
    except KeyboardInterrupt:
        _stop(procs)
        raise
    codes = [p.exitcode for p in procs if p.exitcode]
    if WORKER_CHECKPOINT_WRITE in codes:
        raise CheckpointWriteError(errors.get())
    if WORKER_INTERRUPTED in codes:
        raise KeyboardInterrupt
    if codes:
        raise WorkerError(_failed(procs, crashed, study, config))


def _join(procs: list, study: optuna.Study, storage: RDBStorage) -> dict[int, list[int]]:
    """Wait for the workers. One that crashed has its trials marked as their own crash (the
    pid's trial numbers are returned); one that could not write a checkpoint stops the others
    (the disk is full for them too)."""
    running = list(procs)
    crashed: dict[int, list[int]] = {}
    while running:
        multiprocessing.connection.wait([p.sentinel for p in running])
        for p in [p for p in running if not p.is_alive()]:
            running.remove(p)
            p.join()
            if p.exitcode is not None and -p.exitcode in CRASH_SIGNALS and p.pid is not None:
                crashed[p.pid] = mark_crashed(study, storage, p.pid)
            if p.exitcode == WORKER_CHECKPOINT_WRITE:
                _stop(running)
                return crashed
    return crashed


def _failed(procs: list, crashed: dict[int, list[int]], study: optuna.Study,
            config: SweepConfig) -> str:  # fmt: skip
    """One line for workers that ended badly: how each ended, which trials it took down, and
    what the next run does about them."""
    parts = []
    for p in procs:
        if not p.exitcode:
            continue
        how = (f"died of {signal.Signals(-p.exitcode).name}" if p.exitcode < 0
               else f"exited with status {p.exitcode}")  # fmt: skip
        trials = crashed.get(p.pid)
        if trials:
            how += f" in trial {', '.join(map(str, trials))} (recorded as the trial's own crash)"
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
