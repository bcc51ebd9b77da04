"""Creating or resuming the study, and running its trials in one or more worker processes."""

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

from sweep.artifacts import attach_after_sweep
from sweep.objective import Objective, Sets, SurplusTrial, judge_from_step
from sweep.pruner import DivergencePruner
from sweep.recovery import FINISHED, occupancy, recover, requeue
from sweep.settings import SweepConfig
from sweep.storage import StorageError, open_storage, sqlite_path

IDENTITY_KEY = "config"


class ConfigConflict(Exception):
    """The stored study was made with other settings than the ones given now."""


class WorkerError(Exception):
    """A worker process ended with an error (its own output says which)."""


def conflicts(stored: dict, current: dict) -> list[str]:
    keys = sorted(set(stored) | set(current))
    return [
        f"{k}: study has {stored.get(k)!r}, command gives {current.get(k)!r}"
        for k in keys
        if stored.get(k) != current.get(k)
    ]


def checkpoint_root(config: SweepConfig) -> Path:
    if config.checkpoint_dir:
        return Path(config.checkpoint_dir)
    db = sqlite_path(config.storage)
    return (db.parent if db is not None else Path.cwd()) / "checkpoints"


def open_study(config: SweepConfig, heartbeat: bool = True) -> optuna.Study:
    """Create the study, or load it after checking it was made with the same settings.

    Nothing is written to an existing study whose settings conflict. Workers started at once
    may find the study created but its settings not yet recorded: the first to record them
    wins, and the others compare against what was recorded."""
    current = config.identity()
    _refuse_conflict_read_only(config, current)
    # A trial whose worker went silent is continued from its checkpoint, not restarted.
    storage = open_storage(config.storage, on_stale=requeue if heartbeat else None)
    if config.study_name in optuna.study.get_all_study_names(storage):
        study = optuna.load_study(study_name=config.study_name, storage=storage)
        _check_identity(config, study.user_attrs.get(IDENTITY_KEY), current)
    study = optuna.create_study(
        study_name=config.study_name,
        storage=storage,
        direction="minimize",
        pruner=DivergencePruner(judge_from_step=judge_from_step(config)),
        load_if_exists=True,
    )
    if IDENTITY_KEY not in study.user_attrs:
        study.set_user_attr(IDENTITY_KEY, current)
        study.set_user_attr("objective", "honest validation MSE of the best checkpoint")
        stored = optuna.load_study(study_name=config.study_name, storage=storage).user_attrs
        _check_identity(config, stored.get(IDENTITY_KEY), current)
    return study


def check_writable_folder(folder: Path) -> None:
    """Refuse a checkpoint folder that cannot be created or written, without creating it."""
    probe = folder.resolve()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise StorageError(f"cannot write checkpoints under {folder}: {probe} is not a "
                           "writable folder")  # fmt: skip


def _refuse_conflict_read_only(config: SweepConfig, current: dict) -> None:
    """Compare with an existing SQLite study before opening it for writing: opening for
    writing switches the file to WAL mode, and a refused command must leave it untouched."""
    path = sqlite_path(config.storage)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    try:
        storage = open_storage(config.storage, must_exist=True)
    except StorageError:
        return  # not an Optuna database yet, or unreadable: the writing path says why
    try:
        if config.study_name in optuna.study.get_all_study_names(storage):
            study = optuna.load_study(study_name=config.study_name, storage=storage)
            _check_identity(config, study.user_attrs.get(IDENTITY_KEY), current)
    finally:
        storage.engine.dispose()


def _check_identity(config: SweepConfig, stored: dict | None, current: dict) -> None:
    if stored is None:
        return  # being created by another worker right now
    problems = conflicts(stored, current)
    if problems:
        raise ConfigConflict(
            f"study {config.study_name!r} was run with other settings ("
            + "; ".join(problems)
            + "); use another --study-name or the same settings"
        )


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
    if config.engine == "reference" or config.method == "clock":
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
    objective = Objective(config, Sets.build(config), checkpoint_root(config),
                          log=lambda m: log(prefix + m))  # fmt: skip

    def stop_when_full(study: optuna.Study, _trial: FrozenTrial) -> None:
        # Counts the trials other workers are running too, so that no worker starts a
        # trial the study will not need (MaxTrialsCallback counts finished trials only).
        if occupied(study) >= config.trials:
            study.stop()

    study.optimize(objective, callbacks=[stop_when_full], catch=(SurplusTrial,),
                   gc_after_trial=False)  # fmt: skip


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
