"""When the clock's polish stage stops, goes on as the study's leader, or can be reopened: the
rules of ``ClockConfig``'s polish budget, target and leader fields, written once.

Pure functions of the config and plain numbers (no torch, nothing of the sweep): the trainer
asks them after every polish epoch (``model.clock.training``), and ``model.clock.state``
asks them whether a finished run can be reopened for the leader. ``spent`` is always the
polish stage's evaluations so far.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from model.clock.config import STAGE_POLISH, ClockConfig
from model.method import STOP_BEHIND, STOP_CONVERGED, STOP_MAX_EPOCHS, STOP_TARGET


class PolishEpoch(Protocol):
    """What the rules read of an epoch (a ``ClockReport``; the state module asks these rules,
    so they do not import it)."""

    stage: str
    steps: int
    val_mse: float


def target_met(cfg: ClockConfig, val_mse: float, spent: int) -> bool:
    """Under polish_target, counted from polish_goal_after evaluations on."""
    return val_mse < cfg.polish_target and spent >= cfg.polish_goal_after


def out_of_reach(cfg: ClockConfig, val_mse: float, spent: int) -> bool:
    """Above polish_give_up, counted from polish_goal_after evaluations on: in the recorded
    sweeps no run that far above the target at that point went on to reach it."""
    return (
        bool(cfg.polish_give_up)
        and val_mse > cfg.polish_give_up
        and spent >= cfg.polish_goal_after
    )


def past_goal(cfg: ClockConfig, val_mse: float, spent: int) -> bool:
    """The polish has met its target or spent its budget: only a leader goes on."""
    return target_met(cfg, val_mse, spent) or spent >= cfg.polish_evaluations


def leader_done(cfg: ClockConfig, val_mse: float, spent: int) -> bool:
    """Nothing is left for a leader: it has no budget of its own, has spent it, or is under
    its target."""
    return (
        cfg.polish_leader_evaluations <= cfg.polish_evaluations
        or spent >= cfg.polish_most
        or bool(cfg.polish_leader_target and val_mse < cfg.polish_leader_target)
    )


def polish_stop(cfg: ClockConfig, val_mse: float, spent: int, converged: bool,
                leads: Callable[[], bool] | None) -> str | None:  # fmt: skip
    """Why the polish stops after this epoch (None: it goes on). Past its goal, a run goes on
    only while it leads its study (``leads``, asked only then; None: it never leads), within
    the leader's budget and target; the goal met says more than "converged" too. Short of its
    goal, a run with no descent left stops as converged, and one out of reach is given up."""
    if not past_goal(cfg, val_mse, spent):
        if converged:
            return STOP_CONVERGED
        return STOP_BEHIND if out_of_reach(cfg, val_mse, spent) else None
    met = target_met(cfg, val_mse, spent)
    leader_met = bool(cfg.polish_leader_target and val_mse < cfg.polish_leader_target)
    if converged or spent >= cfg.polish_most or leader_met:
        if met or leader_met:
            return STOP_TARGET
        return STOP_CONVERGED if converged else STOP_MAX_EPOCHS
    # A config whose leader has no budget beyond the run's own never goes on (ClockConfig);
    # leader_done says so before the lead is asked.
    if leads is None or leader_done(cfg, val_mse, spent) or not leads():
        return STOP_TARGET if met else STOP_MAX_EPOCHS
    return None


def goal_mse(cfg: ClockConfig, history: Iterable[PolishEpoch], val_mse: float) -> float:
    """The honest validation MSE at the first polish epoch past its goal (``val_mse``, this
    epoch's, when no earlier one was): what runs are compared by for the lead, each at the
    same point of its polish, not one run's long polish against another's short one."""
    spent = 0
    for r in history:
        if r.stage == STAGE_POLISH:
            spent += r.steps
            if past_goal(cfg, r.val_mse, spent):
                return r.val_mse
    return val_mse
