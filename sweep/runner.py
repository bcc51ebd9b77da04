"""Running a sweep: a worker's share of the trials, and the command's loop around the workers
(``sweep.processes``) that resumes cut-off trials and ends with the best model attached."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from optuna_dashboard import save_note

from sweep import records as rec
from sweep.admission import SurplusTrial
from sweep.delivery import Sets
from sweep.identity import open_study_and_storage
from sweep.leaders import polish_on
from sweep.objective import Objective
from sweep.processes import run_processes
from sweep.report.artifacts import attach_after_sweep, default_artifact_dir, open_store
from sweep.report.notes import study_note
from sweep.report.summary import collect
from sweep.report.text import conclusion
from sweep.settings import SweepConfig
from sweep.space import sampler
from sweep.store import liveness
from sweep.store.fencing import TakenOver
from sweep.store.optuna_private import OPTIMIZE_LOGGER
from sweep.store.reconnect import DatabaseUnavailable
from sweep.store.recovery import (
    CheckpointWriteError,
    fail_dead,
    finished_count,
    mark_dead,
    occupancy,
    recover,
    requeue_leaders,
    waiting_leader,
)
from sweep.store.storage import StorageError, heartbeat, sqlite_path

#: A worker's warm-up longer than this compiled its kernels (loading them takes ~0.5 s): said.
COMPILE_NOTE_S = 2.0


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


def full(study: optuna.Study, wanted: int) -> bool:
    """Whether the study holds ``wanted`` runs, finished or running in live processes, and no
    leader's polish waits for a worker."""
    trials = study.get_trials(deepcopy=False)
    return sum(occupancy(trials)) >= wanted and not waiting_leader(trials)


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
    logging.getLogger(OPTIMIZE_LOGGER).addFilter(_expected_failures)
    prefix = f"[worker {index}] " if config.workers > 1 else ""
    # A lost connection to the database is said once, and ridden out even while opening.
    study, _ = open_study_and_storage(config, say=lambda m: log(prefix + m))
    if full(study, config.trials):
        return
    if n_trials is None:
        n_trials = len(study.get_trials(deepcopy=False))
    study.sampler = sampler(config.training_method, worker_seed(config, index, n_trials))
    started = time.perf_counter()
    config.training_method.warm_up(config.settings, config.data)
    took = time.perf_counter() - started
    if took >= COMPILE_NOTE_S:
        log(f"{prefix}compiled the kernels in {took:.1f} s (once per machine: numba keeps them "
            "in its cache)")  # fmt: skip
    store = open_store(default_artifact_dir(config.storage))
    objective = Objective(config, Sets.build(config), checkpoint_root(config),
                          log=lambda m: log(prefix + m), store=store)  # fmt: skip

    def stop_when_full(study: optuna.Study, _trial: FrozenTrial) -> None:
        # Counts the trials other workers are running too, so that no worker starts a
        # trial the study will not need (MaxTrialsCallback counts finished trials only).
        if full(study, config.trials):
            study.stop()

    # A leader's polish is queued before the check for a full study, which then still runs it.
    leader = polish_on(config.training_method, checkpoint_root(config), lambda m: log(prefix + m))
    while True:
        try:
            _optimize(study, objective, callbacks=[note_study, leader, stop_when_full])
            return
        except TakenOver as exc:  # woken after a takeover: the trial is dropped, said once
            log(prefix + str(exc))
            if full(study, config.trials):
                return


def _optimize(study: optuna.Study, objective: Objective, callbacks: list) -> None:
    """``study.optimize``, with our stops as they were raised. A stop raised inside the tell
    at a trial's end (``TakenOver``, ``DatabaseUnavailable``) leaves the ``updated_state`` that
    Optuna's trial loop reads in a ``finally`` clause unset, and comes out as the context of
    its ``UnboundLocalError``."""
    try:
        study.optimize(objective, callbacks=callbacks, catch=(SurplusTrial,),
                       gc_after_trial=False)  # fmt: skip
    except Exception as exc:
        stop = exc.__context__
        while stop is not None and not isinstance(stop, TakenOver | DatabaseUnavailable):
            stop = stop.__context__
        if stop is None:
            raise
        raise stop from None


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


def run_sweep(config: SweepConfig, log: Callable[[str], None] = print,
              watch: Callable[[optuna.Study], None] | None = None) -> optuna.Study:  # fmt: skip
    """Open (or resume) the study, recover cut-off trials, and run the workers. ``watch``: the
    live view, given the study once it is open; with one, the worker processes' messages go
    through ``log`` too (the view owns the terminal).

    A RUNNING trial that names no process (asked by another program, which may have died)
    cannot be judged until it is ``liveness.unowned_grace()`` old: if the study ends short
    of ``--trials`` because of one, the sweep waits for it, then takes it over."""
    check_writable_folder(checkpoint_root(config))
    study, storage = open_study_and_storage(config)
    storage.say = log
    if watch is not None:
        watch(study)
    n_trials = len(study.get_trials(deepcopy=False))
    waited: set[int] = set()  # trials of other machines waited for once already
    while True:
        done = finished_count(study)
        left = config.trials - done
        if left > 0:
            queued = recover(study, storage, needed=left)
        else:
            # Full: trials cut off earlier are not queued again (a copy nobody runs would wait
            # forever; a run with a larger --trials continues them), but a leader's polish
            # takes no place in --trials. None stays RUNNING.
            fail_dead(study, storage)
            queued = requeue_leaders(study)
            if not waiting_leader(study.get_trials(deepcopy=False)):
                log(f"study {config.study_name!r} already holds {done} finished trials; "
                    "nothing to run")  # fmt: skip
                break  # still attach the best model: a run that ended badly may not have
        if queued:
            log(f"continuing trials cut off earlier: {', '.join(map(str, queued))}")
        # No more workers than trials left: a worker with nothing to do would still ask Optuna
        # for a trial, which is then refused and stays in the study as FAIL ("surplus").
        this_round = replace(config, workers=max(1, min(config.workers, left)))
        log(f"study {config.study_name!r}: {done} of {config.trials} trials finished; "
            f"running with {this_round.workers} worker(s)")  # fmt: skip
        if this_round.workers == 1:
            try:
                run_worker(this_round, 0, log, n_trials)
            except DatabaseUnavailable:
                # Its trial, if the database is back to record it, is not left RUNNING.
                mark_dead(study, storage, os.getpid(), rec.STOP_OWNER_DIED)
                raise
        else:
            run_processes(run_worker, this_round, study, storage, n_trials,
                          relay=log if watch is not None else None)  # fmt: skip
        if finished_count(study) >= config.trials and not waiting_leader(
            study.get_trials(deepcopy=False)
        ):
            # Full; but a trial asked by a process that died at once may still have looked
            # young when this run began: judge it before leaving, so none stays RUNNING.
            if _wait_for_unowned(study, log, "judging them"):
                fail_dead(study, storage)
            break
        if not (_wait_for_unowned(study, log) or _wait_for_other_hosts(study, log, waited)):
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


def _wait_for_other_hosts(study: optuna.Study, log: Callable[[str], None],
                          waited: set[int]) -> bool:  # fmt: skip
    """The study is short because of trials RUNNING on other machines, whose process this one
    cannot judge: wait until they end or their heartbeat has been silent for the grace period
    (then the next round takes them over); True when there was something to wait for. (A
    machine that died moments ago left them with a fresh heartbeat: the sweep ended `done.`
    with the study short.) Trials still running after one such wait are alive: said, False."""
    here = liveness.host_id()
    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    remote = {t.number: w.rsplit(":", 2)[0] for t in trials
              if isinstance(w := t.user_attrs.get(rec.WORKER), str)
              and w.rsplit(":", 2)[0] != here}  # fmt: skip
    if not remote:
        return False
    numbers = ", ".join(map(str, sorted(remote)))
    if set(remote) <= waited:
        log(f"trial(s) {numbers} still running on {', '.join(sorted(set(remote.values())))} "
            "with a live heartbeat: the study is complete once they finish there")  # fmt: skip
        return False
    waited.update(remote)
    wait = sum(heartbeat())  # the grace period plus an interval
    log(f"trial(s) {numbers} running on another machine ({', '.join(sorted(set(remote.values())))}"
        f"); waiting up to {wait} s for them to end or their heartbeat to stop, then taking "
        "them over")  # fmt: skip
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(1.0)
        still = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not {t.number for t in still} & set(remote):
            break
    return True
