"""Trials cut off by a dead process or Ctrl-C are queued again and continue from their last
checkpoint, so no finished epoch is trained twice and the learning curve stays one curve."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from sweep import records as rec
from sweep.store import liveness

#: A trial that crashed its own process this many times in a row without reporting a new epoch
#: is left failed: a trial that kills its process every time must not loop forever. Only the
#: trial's own crashes count (a worker that died of SIGSEGV, SIGBUS, SIGABRT, SIGILL or SIGFPE,
#: seen by the runner); a kill from outside (SIGKILL, SIGTERM, Ctrl-C, a lost host, a full
#: disk) never does, so a line whose epochs are all checkpointed is always continued.
MAX_STALLED_RETRIES = 3
#: How many checkpoints of a line of cut-off trials a copy may fall back on (newest first).
_LINE = 8
CUT_OFF = (rec.STOP_OWNER_DIED, rec.STOP_INTERRUPTED, rec.STOP_CRASHED, rec.STOP_CHECKPOINT_WRITE)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: Attributes that describe how the dead attempt ended, not the trial: not carried over.
#: (``checkpoint`` is carried as ``continues_checkpoint``, the newest first of the line of
#: checkpoints the copy may continue from; ``fallback_checkpoints`` holds the older ones.)
_NOT_INHERITED = (
    rec.WORKER, rec.STOP_REASON, rec.VERDICT, rec.VERDICT_EPOCH, rec.ACTION, rec.PLAN_ACTION,
    rec.VERDICT_REASON, rec.CHECKPOINT, rec.CONTINUED_FROM,
)  # fmt: skip


def requeue(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Queue a WAITING copy of ``trial`` that continues from its checkpoint; False when the
    trial has been cut off too often without progress and is left failed.

    Same signature as Optuna's heartbeat stale-trial callback, which it replaces: it also keeps
    the intermediate values and points the copy at the dead trial's checkpoint."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    progress = len(trial.intermediate_values)
    stalled = int(trial.system_attrs.get("stalled_retries", 0))
    if progress > trial.system_attrs.get("retry_progress", -1):
        stalled = 0
    elif trial.user_attrs.get(rec.STOP_REASON) == rec.STOP_CRASHED:
        stalled += 1
    if stalled >= MAX_STALLED_RETRIES:
        return False
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in _NOT_INHERITED}
    # Its own checkpoint first; but a trial cut off before (or while) writing its first one
    # must pass on those it was given, or the epochs they hold would be trained again.
    a = trial.user_attrs
    line = [a.get(rec.CHECKPOINT), a.get(rec.CONTINUES_CHECKPOINT),
            *a.get(rec.FALLBACK_CHECKPOINTS, [])]  # fmt: skip
    line = list(dict.fromkeys(p for p in line if p))[:_LINE]
    user_attrs.pop(rec.CONTINUES_CHECKPOINT, None)
    user_attrs.pop(rec.FALLBACK_CHECKPOINTS, None)
    if line:
        user_attrs[rec.CONTINUES_CHECKPOINT] = line[0]
        user_attrs[rec.FALLBACK_CHECKPOINTS] = line[1:]
    user_attrs[rec.CONTINUES_TRIAL] = trial.number
    _queue(study, trial, user_attrs, {
        "failed_trial": history[0],
        "retry_history": history,
        "retry_progress": progress,
        "stalled_retries": stalled,
    })  # fmt: skip
    return True


def queue_leader(study: optuna.Study, trial: FrozenTrial, checkpoint: str) -> None:
    """Queue a WAITING trial that goes on with the finished ``trial``'s polish from its last
    ``checkpoint``, as the study's leader (``sweep.leaders``): the same run, so it inherits
    the goal it is compared by, and its curve goes on as one curve. It takes no place in
    ``--trials`` (``occupancy``)."""
    user_attrs = {rec.CONTINUES_TRIAL: trial.number, rec.CONTINUES_CHECKPOINT: checkpoint,
                  rec.LEADS_ON: trial.number}  # fmt: skip
    if trial.user_attrs.get(rec.GOAL_MSE) is not None:
        user_attrs[rec.GOAL_MSE] = trial.user_attrs[rec.GOAL_MSE]
    _queue(study, trial, user_attrs, {})


def _queue(study: optuna.Study, trial: FrozenTrial, user_attrs: dict, system_attrs: dict
           ) -> None:  # fmt: skip
    """Add a WAITING trial with ``trial``'s parameters, reported values and curves."""
    # The curves go on as a system attribute, where they are kept (rec.CURVES_KEY), also those
    # of a trial recorded before they moved there.
    user_attrs.pop(rec.CURVES_KEY, None)
    curves = rec.curves(trial)
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=user_attrs,
            system_attrs={**system_attrs, **({rec.CURVES_KEY: dict(curves)} if curves else {})},
            intermediate_values=trial.intermediate_values,
        )
    )


def is_leader_copy(trial: FrozenTrial) -> bool:
    """A trial that goes on with another's polish (``queue_leader``), or a copy of one."""
    return trial.user_attrs.get(rec.LEADS_ON) is not None


def waiting_leader(trials: Sequence[FrozenTrial]) -> bool:
    """Whether a leader's polish waits for a worker: a full study still runs it."""
    return any(t.state == TrialState.WAITING and is_leader_copy(t) for t in trials)


class CheckpointWriteError(Exception):
    """A checkpoint could not be written; the message is one line for the user."""


def _fail_running(study: optuna.Study, storage: BaseStorage, which: Callable[[FrozenTrial], bool],
                  reason: str) -> list[int]:  # fmt: skip
    """Mark FAIL with its stop reason every RUNNING trial ``which`` picks, through the study's
    storage (other processes' trials: Optuna's study-level calls act only on a trial asked in
    this one); their numbers, less any another worker finished first."""
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not which(t):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        try:
            storage.set_trial_user_attr(trial_id, rec.STOP_REASON, reason)
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue
        failed.append(t.number)
    return failed


def mark_dead(study: optuna.Study, storage: BaseStorage, pid: int, reason: str) -> list[int]:
    """Fail with ``reason`` the RUNNING trials of worker process ``pid`` (on this host), which
    the runner saw die: ``STOP_CRASHED`` for a fatal signal of its own (it counts against the
    trial's retries), ``STOP_OWNER_DIED`` for a kill from outside. Returns their numbers."""
    mine = f"{liveness.host_id()}:{pid}:"

    def of_pid(t: FrozenTrial) -> bool:
        worker = t.user_attrs.get(rec.WORKER)
        return isinstance(worker, str) and worker.startswith(mine)

    return _fail_running(study, storage, of_pid, reason)


def _retried(trials: Sequence[FrozenTrial]) -> set[int]:
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def fail_dead(study: optuna.Study, storage: BaseStorage) -> list[int]:
    """Mark FAIL (``owner_died``) every RUNNING trial whose process is gone; their numbers."""
    return _fail_running(study, storage, lambda t: not liveness.alive(t), rec.STOP_OWNER_DIED)


def recover(study: optuna.Study, storage: BaseStorage, needed: int | None = None) -> list[int]:
    """Fail RUNNING trials whose process on this host is gone (and, through Optuna's heartbeat,
    those of other hosts silent for the grace period), and queue cut-off trials that have not
    been queued yet, the furthest along first. Returns the numbers of the trials queued again.

    ``needed``: the finished trials the run still has to make. No more copies are queued than
    that, counting the trials already waiting and those running in live processes (other
    commands on a shared study): a copy beyond it would wait with no worker to run it (a later
    run with a larger ``--trials`` queues it). None: every cut-off trial.

    Two workers recovering at once may both queue a copy; the objective runs only the first
    (``STOP_DUPLICATE``). ``storage``: the one the study was opened with."""
    fail_dead(study, storage)
    before = _retried(study.get_trials(deepcopy=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # calls requeue for each trial it fails
    trials = study.get_trials(deepcopy=False)
    waiting = sum(t.state == TrialState.WAITING and not is_leader_copy(t) for t in trials)
    room = len(trials) if needed is None else needed - waiting - occupancy(trials)[1]
    for t in sorted(_cut_off(trials), key=lambda t: (-len(t.intermediate_values), t.number)):
        if is_leader_copy(t):  # takes no place in --trials: a full study still finishes it
            requeue(study, t)
        elif room > 0 and requeue(study, t):  # False: given up (crashed too often)
            room -= 1
    return sorted(_retried(study.get_trials(deepcopy=False)) - before)


def requeue_leaders(study: optuna.Study) -> list[int]:
    """Queue again the cut-off trials that polish on a finished run as the study's leader,
    which a full study still finishes (``recover`` does this with the rest); their numbers."""
    return [t.number for t in _cut_off(study.get_trials(deepcopy=False))
            if is_leader_copy(t) and requeue(study, t)]  # fmt: skip


def _cut_off(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Trials cut off from outside (or crashed) that have not been queued again yet."""
    done = _retried(trials)
    return [t for t in trials if t.state == TrialState.FAIL and t.number not in done
            and t.user_attrs.get(rec.STOP_REASON) in CUT_OFF]  # fmt: skip


def finished_count(study: optuna.Study) -> int:
    """Finished runs: what ``--trials`` counts (a leader's polish on a run is no new one)."""
    trials = study.get_trials(deepcopy=False, states=FINISHED)
    return sum(not is_leader_copy(t) for t in trials)


def occupancy(trials: Sequence[FrozenTrial], me: FrozenTrial | None = None) -> tuple[int, int]:
    """(finished runs, runs going on in a live process), as ``--trials`` counts them: a
    leader's polish on a finished run is no new one. With ``me``, only the trials that started
    running before ``me`` count as running: of two workers that start a trial at the same
    moment, the earlier one runs, so the study never ends one short."""
    runs = [t for t in trials if not is_leader_copy(t)]
    done = sum(t.state in FINISHED for t in runs)
    running = [t for t in runs if t.state == TrialState.RUNNING and liveness.alive(t)]
    if me is not None:
        mine = _start_key(me)
        running = [t for t in running if _start_key(t) < mine]
    return done, len(running)


def _start_key(t: FrozenTrial) -> tuple[float, int]:
    return (t.datetime_start.timestamp() if t.datetime_start else float("inf"), t.number)
