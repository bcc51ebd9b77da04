"""Starting a trial: a fresh run, or the continuation of a dead or interrupted trial from the
newest usable checkpoint of its line, so no finished epoch is trained twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from model.checkpoint import CheckpointError
from model.data import DataConfig, SignalSet
from model.method import LeadCheck, Method, Run, StallCheck, State
from sweep import records as rec
from sweep.admission import SurplusTrial
from sweep.store import optuna_private


def start_or_continue(
    trial: optuna.Trial,
    method: Method,
    config: Any,
    sets: tuple[SignalSet, SignalSet, DataConfig],
    root: Path,
    log: Callable[[str], None],
    stall_check: StallCheck | None = None,
    leads: LeadCheck | None = None,
) -> Run:
    """A checkpoint that is unreadable or from another configuration is skipped with a
    warning (an older one, or a fresh run, is used): never a failed trial."""
    parent = trial.user_attrs.get(rec.CONTINUES_TRIAL)
    if parent is None:
        return method.start(config, *sets, stall_check=stall_check, leads=leads)
    remove_stale_temporaries(rec.trial_folder(root, trial.study.study_name, parent))
    stored = [
        trial.user_attrs.get(rec.CONTINUES_CHECKPOINT),
        *trial.user_attrs.get(rec.FALLBACK_CHECKPOINTS, []),
    ]
    # Stored paths may be relative to another working directory: also look for the same
    # <study>/trial-NNNN/last.npz under this run's checkpoint folder.
    paths = [Path(c) for c in stored if c]
    moved = [rec.relocated(p, root) for p in paths]
    candidates = list(dict.fromkeys(p.resolve() for p in [*paths, *moved]))
    state, problems = newest_state(candidates, method, config)
    for problem in problems:
        log(f"warning: trial {trial.number}: skipping checkpoint {problem}")
    if trial.user_attrs.get(rec.LEADS_ON) is not None:
        state = _reopened(trial, method, state, parent)
    if state is None:
        if problems or rec.curve(optuna_private.frozen(trial), rec.VAL_MSE_CURVE):
            # It had finished epochs (inherited curve), so it had a checkpoint.
            log(f"warning: trial {trial.number}: no usable checkpoint of trial {parent}; "
                "it starts again from scratch")  # fmt: skip
        else:
            log(f"trial {trial.number}: trial {parent} starts again from scratch "
                "(it was cut off before its first checkpoint)")  # fmt: skip
        return method.start(config, *sets, stall_check=stall_check, leads=leads)
    trial.set_user_attr(rec.CONTINUED_FROM, parent)
    how = ("polishing on" if trial.user_attrs.get(rec.LEADS_ON) == parent
           else "continuing")  # fmt: skip
    log(f"trial {trial.number}: {how} trial {parent} from epoch {state.epoch}")
    return method.resume(state, *sets, stall_check=stall_check, leads=leads)


def _reopened(trial: optuna.Trial, method: Method, state: State | None, parent: int) -> State:
    """A leader's polish goes on from its run's checkpoint, or not at all: starting the run
    again from scratch would train every epoch twice."""
    reopened = None if state is None else method.reopen(state)
    if reopened is None:
        trial.set_user_attr(rec.STOP_REASON, rec.STOP_SURPLUS)
        raise SurplusTrial(f"trial {parent} has no checkpoint a leader could polish on from")
    return reopened


def newest_state(paths: list[Path], method: Method, config: Any) -> tuple[State | None, list[str]]:
    """The checkpoint with the most epochs among ``paths`` that loads and matches ``config``;
    also what was wrong with the others (a file that is not there is no problem: its trial
    was cut off before its first checkpoint)."""
    best: State | None = None
    problems = []
    for path in paths:
        if not path.exists():
            continue
        try:
            state = method.adopt(method.load(path), config)
            if state is None:
                raise CheckpointError(f"{path}: made with another configuration")
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if best is None or state.epoch > best.epoch:
            best = state
    return best, problems


def remove_stale_temporaries(folder: Path) -> None:
    """A process killed while writing a checkpoint leaves its temporary file behind."""
    for tmp in folder.glob("*.tmp"):
        tmp.unlink(missing_ok=True)
