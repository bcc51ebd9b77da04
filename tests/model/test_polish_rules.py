"""The polish stage's stop and leader rules (model.clock.polish_rules), case by case: a budget
of 600 evaluations, a target of 0.001 counted from 200 on, a leader's 2,000 and 0.00015."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from model.clock import polish_rules as rules
from model.clock.config import STAGE_GROW, STAGE_POLISH, ClockConfig
from model.method import STOP_BEHIND, STOP_CONVERGED, STOP_MAX_EPOCHS, STOP_TARGET

CFG = ClockConfig(seed=1, polish_evaluations=600, polish_target=0.001, polish_goal_after=200,
                  polish_leader_evaluations=2000, polish_leader_target=0.00015,
                  polish_give_up=0.002)  # fmt: skip


@pytest.mark.parametrize(("val", "spent", "converged", "leads", "stop"), [
    (0.0005, 100, False, True, None),  # under the target before goal_after: goes on
    (0.005, 300, True, True, STOP_CONVERGED),  # converged short of its goal
    (0.0005, 200, False, False, STOP_TARGET),  # goal met, no lead
    (0.005, 600, False, False, STOP_MAX_EPOCHS),  # budget spent, no lead
    (0.0005, 200, False, True, None),  # goal met and leading: polishes on
    (0.005, 600, False, None, STOP_MAX_EPOCHS),  # no lead check at all: never leads
    (0.0003, 2000, False, True, STOP_TARGET),  # the leader's budget spent, under the target
    (0.0014, 2000, False, True, STOP_MAX_EPOCHS),  # ... above it
    (0.0001, 900, False, True, STOP_TARGET),  # under the leader's target
    (0.0003, 900, True, True, STOP_TARGET),  # a converged leader past its goal: the goal met
    (0.002, 900, True, True, STOP_CONVERGED),
    (0.003, 100, False, True, None),  # above the give-up bar before goal_after: goes on
    (0.003, 200, False, True, STOP_BEHIND),  # ... at goal_after: given up
    (0.0021, 400, False, True, STOP_BEHIND),  # ... or at any later epoch short of its budget
    (0.0019, 200, False, True, None),  # under the bar, short of the target: goes on
    (0.003, 200, True, True, STOP_CONVERGED),  # no descent left says more
])  # fmt: skip
def test_polish_stop(val: float, spent: int, converged: bool, leads: bool | None,
                     stop: str | None) -> None:  # fmt: skip
    asked = []
    check = None if leads is None else (lambda: asked.append(1) or leads)
    assert rules.polish_stop(CFG, val, spent, converged, check) == stop
    # The lead is asked only of a run past its goal with its leader's budget and target left.
    assert bool(asked) == (rules.past_goal(CFG, val, spent) and not rules.leader_done(
        CFG, val, spent) and not converged and leads is not None)  # fmt: skip


@pytest.mark.parametrize("leader", [0, 600])
def test_a_run_without_a_leaders_budget_never_goes_on(leader: int) -> None:
    # Its target met at 200 of its own 600 evaluations, told it leads: it stops there (it
    # polished on to 600, marked leading, while ClockConfig said such a run never goes on).
    cfg = replace(CFG, polish_leader_evaluations=leader)
    assert rules.polish_stop(cfg, 0.0005, 200, False, lambda: True) == STOP_TARGET
    assert rules.polish_stop(cfg, 0.0015, 200, False, lambda: True) is None  # short of goal


@pytest.mark.parametrize(("cfg", "val", "spent", "done"), [
    (CFG, 0.0005, 600, False),
    (CFG, 0.0005, 2000, True),
    (CFG, 0.0001, 600, True),
    (replace(CFG, polish_leader_evaluations=0), 0.0005, 600, True),  # no leader's budget
    (replace(CFG, polish_leader_target=0.0), 0.00001, 600, False),  # no leader's target
])  # fmt: skip
def test_leader_done(cfg: ClockConfig, val: float, spent: int, done: bool) -> None:
    assert rules.leader_done(cfg, val, spent) == done


@dataclass(frozen=True)
class Epoch:
    stage: str
    steps: int
    val_mse: float


def test_the_goal_mse_is_the_first_polish_epoch_past_the_goal() -> None:
    history = [Epoch(STAGE_GROW, 100, 0.3), Epoch(STAGE_POLISH, 100, 0.0008),
               Epoch(STAGE_POLISH, 100, 0.0006), Epoch(STAGE_POLISH, 100, 0.0004)]  # fmt: skip
    # 0.0008 is under the target at 100 evaluations, before goal_after: the goal is at 200.
    assert rules.goal_mse(CFG, history, 0.0002) == 0.0006
    assert rules.goal_mse(CFG, history[:2], 0.0006) == 0.0006  # this epoch's, none earlier


def test_without_a_give_up_bar_no_run_is_out_of_reach() -> None:
    cfg = replace(CFG, polish_give_up=0.0)
    assert not rules.out_of_reach(cfg, 0.5, 200)
    assert rules.polish_stop(cfg, 0.5, 200, False, lambda: False) is None


@pytest.mark.parametrize("bar", [0.0005, 0.001, 1.0, -0.1])
def test_the_give_up_bar_lies_above_the_target(bar: float) -> None:
    with pytest.raises(ValueError, match="polish_give_up"):
        replace(CFG, polish_give_up=bar)
