"""Creating or resuming the study, and running its trials in one or more worker processes."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from sweep.objective import Objective, Sets, SurplusTrial
from sweep.pruner import DivergencePruner
from sweep.recovery import recover, requeue
from sweep.settings import SweepConfig
from sweep.storage import open_storage, sqlite_path

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
IDENTITY_KEY = "config"


class ConfigConflict(Exception):
    """The stored study was made with other settings than the ones given now."""


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
    """Create the study, or load it after checking it was made with the same settings."""
    # A trial whose worker went silent is continued from its checkpoint, not restarted.
    storage = open_storage(config.storage, on_stale=requeue if heartbeat else None)
    names = optuna.study.get_all_study_names(storage)
    exists = config.study_name in names
    if exists:
        stored = optuna.load_study(study_name=config.study_name, storage=storage).user_attrs
        problems = conflicts(stored.get(IDENTITY_KEY, {}), config.identity())
        if problems:
            raise ConfigConflict(
                f"study {config.study_name!r} was run with other settings ("
                + "; ".join(problems)
                + "); use another --study-name or the same settings"
            )
    study = optuna.create_study(
        study_name=config.study_name,
        storage=storage,
        direction="minimize",
        pruner=DivergencePruner(),
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        load_if_exists=True,
    )
    if not exists:
        study.set_user_attr(IDENTITY_KEY, config.identity())
        study.set_user_attr("objective", "honest validation MSE of the best checkpoint")
    return study


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def run_worker(config: SweepConfig, index: int = 0, log: Callable[[str], None] = print) -> None:
    """One process's share: trials until the study holds ``config.trials`` finished ones."""
    import torch

    torch.set_num_threads(1)  # one core per worker: workers, not threads, use the machine
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(config)
    # A different sampler stream per worker and per resume, or parallel workers and a rerun
    # would propose the same learning rates again.
    seed = config.seed * 1000 + index * 101 + len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=seed)
    prefix = f"[worker {index}] " if config.workers > 1 else ""
    objective = Objective(config, Sets.build(config), checkpoint_root(config),
                          log=lambda m: log(prefix + m))  # fmt: skip
    if finished_count(study) >= config.trials:
        return
    study.optimize(
        objective,
        callbacks=[MaxTrialsCallback(config.trials, states=FINISHED)],
        catch=(SurplusTrial,),
        gc_after_trial=False,
    )


def _worker_main(config: SweepConfig, index: int) -> None:
    try:
        run_worker(config, index, log=lambda m: print(m, flush=True))
    except KeyboardInterrupt:
        sys.exit(130)


def run_sweep(config: SweepConfig, log: Callable[[str], None] = print) -> optuna.Study:
    """Open (or resume) the study, recover cut-off trials, and run the workers."""
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
        return study
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(config, i)) for i in range(config.workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join()
        raise
    bad = [p.exitcode for p in procs if p.exitcode]
    if 130 in bad:
        raise KeyboardInterrupt
    if bad:
        raise RuntimeError(f"worker processes failed with exit codes {bad}")
    return study
