"""The leader's longer polish (ClockConfig.polish_leader_*), on tiny data: a run past its
polish target or budget goes on only while its ``leads`` check says so, within the leader's
budget and target; the epochs it went on for are marked; the stop reasons are the stage's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from model.clock.config import STAGE_POLISH, ClockConfig
from model.clock.method import ClockMethod
from model.clock.training import ClockTraining
from model.data import DataConfig, make_set
from model.method import STOP_BEHIND, STOP_MAX_EPOCHS, STOP_TARGET

DATA = DataConfig(samples=60)
BASE = dict(seed=1, prefix_start=60, grow_updates=4, tune_updates=0, updates_per_epoch=4,
            hidden_size=8, polish_evaluations=8, polish_leader_evaluations=24)  # fmt: skip


@pytest.fixture(scope="module")
def sets():
    return make_set(1, DATA), make_set(3, DATA)


def polish(sets, leads, **kw) -> list:
    run = ClockTraining.start(ClockConfig(**{**BASE, **kw}), *sets, DATA, None, leads)
    return [r for r in run.epochs() if r.stage == STAGE_POLISH]


def test_a_run_that_never_leads_stops_at_its_budget(sets) -> None:
    asked = []
    reports = polish(sets, lambda v: asked.append(v) or False)
    # (An L-BFGS line search may overrun an epoch's 4 evaluations by one or two.)
    assert len(reports) == 2 and reports[-1].stop_reason == STOP_MAX_EPOCHS
    assert asked == [reports[-1].val_mse] and not any(r.leading for r in reports)


def test_the_leader_polishes_on_to_its_own_budget(sets) -> None:
    reports = polish(sets, lambda v: True)
    assert 24 <= sum(r.steps for r in reports) < 24 + 4
    assert reports[-1].stop_reason == STOP_MAX_EPOCHS
    # Past the 8-evaluation budget every epoch but the last went on as the leader.
    assert [r.leading for r in reports] == [False] + [True] * (len(reports) - 2) + [False]
    assert len(reports) >= 5
    without = polish(sets, None)  # no check at all: as never leading
    assert [r.val_mse for r in without] == [r.val_mse for r in reports[:2]]


def test_a_leader_overtaken_stops_at_the_next_epoch(sets) -> None:
    answers, asked = iter([True, True, False]), []
    reports = polish(sets, lambda v: asked.append(v) or next(answers))
    assert [r.leading for r in reports] == [False, True, True, False]
    assert reports[-1].stop_reason == STOP_MAX_EPOCHS
    # Always asked with its goal MSE: the value of the epoch that spent the budget.
    assert asked == [reports[1].val_mse] * 3


def test_targets_stop_a_run_and_its_leader(sets) -> None:
    v = [r.val_mse for r in polish(sets, lambda v: True)]
    assert v[0] > v[1] > v[2] * 1.0001
    # The goal met after the first epoch: it stops there unless it leads ...
    reports = polish(sets, lambda v: False, polish_target=v[0] * 1.01)
    assert len(reports) == 1 and reports[0].stop_reason == STOP_TARGET
    # ... and a leader stops at its own target, before its budget.
    leader = polish(sets, lambda v: True, polish_target=v[0] * 1.01,
                    polish_leader_target=v[2] * 1.0001)  # fmt: skip
    assert [r.leading for r in leader] == [True, True, False]
    assert leader[-1].stop_reason == STOP_TARGET and leader[-1].val_mse == v[2]


def test_the_leader_budget_counts_in_the_most_epochs() -> None:
    assert ClockConfig(**BASE).epochs == (4 + 24) // 4
    assert ClockConfig(**{**BASE, "polish_leader_evaluations": 0}).epochs == (4 + 8) // 4
    with pytest.raises(ValueError):
        ClockConfig(**{**BASE, "polish_leader_evaluations": 6})  # not a multiple of 4


def test_the_target_counts_from_polish_goal_after(sets) -> None:
    v = [r.val_mse for r in polish(sets, lambda v: True)]
    asked = []
    reports = polish(sets, lambda x: asked.append(x) or False, polish_target=v[0] * 1.01,
                     polish_goal_after=8, polish_evaluations=12)  # fmt: skip
    # Under the target after one epoch, but it counts from the second: compared there.
    assert len(reports) == 2 and reports[-1].stop_reason == STOP_TARGET
    assert asked == [reports[1].val_mse]


def test_a_run_above_polish_give_up_at_its_goal_is_given_up_there(sets, tmp_path) -> None:
    v = [r.val_mse for r in polish(sets, lambda v: True)]
    asked = []
    kw = dict(polish_target=v[-1] / 2, polish_goal_after=8, polish_evaluations=12)
    # Above the bar after one epoch: it counts from the second, where it is still above it.
    reports = polish(sets, lambda x: asked.append(x) or True, polish_give_up=v[1] * 0.99, **kw)
    assert [r.stop_reason for r in reports] == [None, STOP_BEHIND] and not asked
    assert [r.val_mse for r in reports] == v[:2]
    # Under the bar there, it goes on to its budget.
    on = polish(sets, lambda x: asked.append(x) or False, polish_give_up=v[1] * 1.01, **kw)
    assert len(on) == 3 and on[-1].stop_reason == STOP_MAX_EPOCHS and asked
    # A run given up is no leader to reopen.
    given_up = ClockTraining.start(ClockConfig(**{**BASE, **kw, "polish_give_up": v[1] * 0.99}),
                                   *sets, DATA, None, lambda x: True)  # fmt: skip
    list(given_up.epochs())
    clock = ClockMethod()
    # The trial's note says why its polish ended short of its budget.
    assert f"given up there, still above {v[1] * 0.99:g}" in clock.delivered_by(given_up.state)
    kept = ClockTraining.start(ClockConfig(**{**BASE, **kw, "polish_give_up": v[1] * 1.01}),
                               *sets, DATA, None, None)  # fmt: skip
    list(kept.epochs())
    assert "evaluations spent" in clock.delivered_by(kept.state)
    assert "given up" not in clock.delivered_by(kept.state)
    clock.save(given_up.state, tmp_path / "last.npz")
    assert clock.reopen(clock.load(tmp_path / "last.npz")) is None


def test_a_finished_run_reopened_goes_on_as_an_unbroken_leader(sets, tmp_path) -> None:
    """A run that stopped at its budget (no rival made it the leader then), saved, loaded and
    reopened, polishes on to exactly the numbers of a run that led all along."""
    unbroken = ClockTraining.start(ClockConfig(**BASE), *sets, DATA, None, lambda v: True)
    led = list(unbroken.epochs())
    stopped = ClockTraining.start(ClockConfig(**BASE), *sets, DATA, None, lambda v: False)
    first = list(stopped.epochs())
    assert first[-1].stop_reason == STOP_MAX_EPOCHS and len(first) < len(led)
    clock = ClockMethod()
    clock.save(stopped.state, tmp_path / "last.npz")
    state = clock.reopen(clock.load(tmp_path / "last.npz"))
    assert state is not None and state.stop_reason is None
    # As the unbroken leader had it after as many epochs (the seconds aside).
    assert untimed(state.history) == untimed(led[: len(first)])
    again = clock.resume(state, *sets, DATA, None, lambda v: True)
    rest = list(again.epochs())
    assert [(r.val_mse, r.leading, r.stop_reason) for r in [*state.history, *rest]] == [
        (r.val_mse, r.leading, r.stop_reason) for r in led
    ]
    assert again.state.weights.keys() == unbroken.state.weights.keys()
    assert all((again.state.weights[k] == unbroken.state.weights[k]).all()
               for k in again.state.weights)  # fmt: skip
    # Nothing left to gain: the leader's budget spent, or no leader's budget at all.
    assert clock.reopen(unbroken.state) is None
    no_leader = ClockTraining.start(ClockConfig(**{**BASE, "polish_leader_evaluations": 0}),
                                    *sets, DATA, None, lambda v: True)  # fmt: skip
    list(no_leader.epochs())
    assert clock.reopen(no_leader.state) is None


def untimed(reports) -> list:
    return [replace(r, seconds=0.0) for r in reports]


def test_a_converged_polish_is_not_reopened(sets) -> None:
    run = ClockTraining.start(ClockConfig(**BASE), *sets, DATA, None, lambda v: False)
    list(run.epochs())
    last = replace(run.state.history[-1], converged=True)
    state = replace(run.state, history=(*run.state.history[:-1], last))
    assert ClockMethod().reopen(state) is None
    assert ClockMethod().reopen(replace(run.state, stop_reason=None)).stop_reason is None


def test_what_delivered_the_weights_counts_the_leaders_evaluations_apart(sets) -> None:
    run = ClockTraining.start(ClockConfig(**BASE), *sets, DATA, None, lambda v: True)
    reports = [r for r in run.epochs() if r.stage == STAGE_POLISH]
    own = sum(r.steps for r in reports[:2])  # the first epoch marked leading spent the budget
    text = ClockMethod().delivered_by(run.state)
    # It read "28 of 8 evaluations": the leader's evaluations counted against the first budget.
    assert f"{own} of 8 evaluations spent in that stage; " in text, text
    assert f"{sum(r.steps for r in reports) - own} more as the study's leader, up to 24" in text
    alone = ClockTraining.start(ClockConfig(**BASE), *sets, DATA, None, None)
    list(alone.epochs())
    assert "more as the study's leader" not in ClockMethod().delivered_by(alone.state)
