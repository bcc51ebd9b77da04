"""Running a sweep's trials in one or more worker processes, and resuming cut-off ones."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial
from optuna_dashboard import save_note

from sweep.admission import SurplusTrial
from sweep.artifacts import attach_after_sweep, default_artifact_dir, open_store
from sweep.delivery import Sets
from sweep.identity import open_study
from sweep.notes import study_note
from sweep.objective import Objective
from sweep.recovery import FINISHED, occupancy, recover
from sweep.report import collect, conclusion
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
    """A different sampler stream per worker process and per resume: workers started at once
    (even in separate commands) would otherwise propose the same learning rates (Optuna's
    advice: do not fix the sampler's seed in distributed optimisation). Weight initialisation
    keeps ``--seed``, so a trial's numbers depend on its learning rate only."""
    entropy = [config.seed, index, n_trials, os.getpid()]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def run_worker(config: SweepConfig, index: int = 0, log: Callable[[str], None] = print) -> None:
    """One process's share: trials until the study holds ``config.trials`` finished ones."""
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
    study.sampler = optuna.samplers.TPESampler(
        seed=worker_seed(config, index, len(study.get_trials(deepcopy=False)))
    )
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
    if isinstance(exc, KeyboardInterrupt | SurplusTrial):
        return False
    return not record.getMessage().endswith("failed with value None.")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _worker_main(config: SweepConfig, index: int) -> None:
    # The parent passes Ctrl-C on (as SIGUSR1) exactly once; the terminal's own SIGINT, sent
    # to the whole process group, is ignored, or a worker could be interrupted twice while
    # it records the first interruption.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, _interrupt)
    try:
        run_worker(config, index, log=lambda m: print(m, flush=True))
    except KeyboardInterrupt:
        sys.exit(130)


def run_sweep(config: SweepConfig, log: Callable[[str], None] = print) -> optuna.Study:
    """Open (or resume) the study, recover cut-off trials, and run the workers."""
    check_writable_folder(checkpoint_root(config))
    study = open_study(config)
    queued = recover(study)
    if queued:
        log(f"continuing trials cut off earlier: {', '.join(map(str, queued))}")
    done = finished_count(study)
    if done >= config.trials:
        log(f"study {config.study_name!r} already holds {done} finished trials; nothing to run")
        return study
    log(f"study {config.study_name!r}: {done} of {config.trials} trials finished; "
        f"running with {config.workers} worker(s)")  # fmt: skip
    if config.workers == 1:
        run_worker(config, 0, log)
    else:
        _run_processes(config)
    # The best model, where optuna-dashboard lists it (beside the database, for SQLite).
    attach_after_sweep(study, config.storage, log)
    return study


def _run_processes(config: SweepConfig) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(config, i)) for i in range(config.workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGUSR1)
        for p in procs:
            p.join()
        raise
    bad = [p.exitcode for p in procs if p.exitcode]
    if 130 in bad:
        raise KeyboardInterrupt
    if bad:
        raise WorkerError(f"worker processes failed with exit codes {bad}")
