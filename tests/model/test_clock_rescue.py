"""The stall rescue (ClockConfig.stall_rescue), on tiny data: where the stall rule fires, one
L-BFGS call on the stalled prefix; T grows and the attempt goes on when it learns the prefix,
else the attempt is given up as before; the grow budget is not charged; a checkpoint taken
after a rescue continues exactly."""

from __future__ import annotations

import numpy as np
import pytest

from model.clock.config import STAGE_GROW, ClockConfig
from model.clock.state import state_from_dict, state_to_dict
from model.clock.training import ClockTraining
from model.data import DataConfig, make_set

DATA = DataConfig(samples=40)
TINY = dict(prefix_start=4, grow_updates=16, tune_updates=4, updates_per_epoch=4, tune_warmup=2,
            hidden_size=8, growth_threshold=1e-12, max_restarts=2, stall_rescue=6)  # fmt: skip


def stalled_at(*epochs: int):
    """A stall rule that calls the attempt stalled at these epochs of the run."""

    def check(reports, full_length, last_grow_epoch):
        return "stalled" if reports[-1].epoch in epochs else None

    return check


@pytest.fixture(scope="module")
def sets():
    return make_set(1, DATA), make_set(3, DATA)


def start(sets, check, **kw) -> ClockTraining:
    return ClockTraining.start(ClockConfig(**{**TINY, **kw}), sets[0], sets[1], DATA, check)


def test_config_rejects_a_negative_rescue_and_one_without_ignore_s() -> None:
    for kw in ({"stall_rescue": -1}, {"ignore_s": False}):
        with pytest.raises(ValueError):
            ClockConfig(**{**TINY, **kw})


def learns_every_prefix(monkeypatch) -> None:
    """The real L-BFGS call, reported as having learnt the prefix (Adam's EMA never gets under
    the 1e-12 gate, so only a rescue grows T)."""
    real = ClockTraining._grow_lbfgs

    def fake(self, prefix, evaluations):
        return 0.0, real(self, prefix, evaluations)[1]

    monkeypatch.setattr(ClockTraining, "_grow_lbfgs", fake)


def test_a_rescue_that_learns_the_prefix_grows_t_instead_of_starting_over(sets, monkeypatch):
    learns_every_prefix(monkeypatch)
    t = start(sets, stalled_at(2))
    first = t.run_epoch()
    rescued = t.run_epoch()
    assert rescued.rescued and not rescued.restarted and rescued.attempt == 0
    assert rescued.prefix > first.prefix  # T grew where the attempt would have ended
    assert rescued.steps == 4 + 6  # its evaluations are reported ...
    assert t.state.updates == 8  # ... but not charged to the grow budget
    assert t.state.prefix == rescued.prefix and t.state.stage == STAGE_GROW


def test_a_rescue_that_fails_starts_over_as_before(sets) -> None:
    without = start(sets, stalled_at(2), stall_rescue=0)
    t = start(sets, stalled_at(2))  # the gate at 1e-12 is out of reach: the call fails
    for run in (without, t):
        run.run_epoch()
        report = run.run_epoch()
        assert report.restarted and not report.rescued and run.state.attempt == 1
    assert t.state.history[-1].steps == 4 + 6 and without.state.history[-1].steps == 4
    # Both start the next attempt from the same initial weights.
    for name, w in without.state.weights.items():
        np.testing.assert_array_equal(t.state.weights[name], w)


def test_no_rescue_once_the_grow_budget_is_spent(sets, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(ClockTraining, "_grow_lbfgs",
                        lambda self, prefix, n: calls.append(n) or (0.0, 0.0))  # fmt: skip
    t = start(sets, stalled_at(4), max_restarts=0)  # epoch 4 ends the 16-update grow budget
    reports = [t.run_epoch() for _ in range(4)]
    assert calls == [] and not reports[-1].rescued


def test_a_checkpoint_after_a_rescue_continues_exactly(sets, monkeypatch) -> None:
    learns_every_prefix(monkeypatch)
    whole = start(sets, stalled_at(2))
    reports = [whole.run_epoch() for _ in range(4)]
    part = start(sets, stalled_at(2))
    part.run_epoch(), part.run_epoch()
    again = ClockTraining(sets[0], sets[1], state_from_dict(state_to_dict(part.state)), DATA,
                          stalled_at(2))  # fmt: skip
    rest = [again.run_epoch() for _ in range(2)]
    assert reports[1].rescued and reports[1].prefix > reports[0].prefix
    assert [r.val_mse for r in rest] == [r.val_mse for r in reports[2:]]
    assert [r.prefix for r in rest] == [r.prefix for r in reports[2:]]


def test_the_progress_line_and_the_recipe_say_so(sets, monkeypatch) -> None:
    from model.clock.method import ClockMethod

    learns_every_prefix(monkeypatch)
    t = start(sets, stalled_at(2))
    t.run_epoch()
    line = ClockMethod().progress(t.state.config, t.run_epoch())
    assert "stalled: an L-BFGS call on the prefix grew T" in line
    assert "one L-BFGS call of 6 evaluations on the stalled prefix" in ClockMethod().describe(
        t.state.config
    )
