"""The grow stage's L-BFGS rounds (ClockConfig.grow_lbfgs), on tiny data: the epoch's budget,
when a call is made, T growing on a learnt prefix, and a checkpoint that continues exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.checkpoint import atomic_save
from model.clock.config import STAGE_GROW, STAGE_TUNE, ClockConfig
from model.clock.polish import prefix_batch
from model.clock.state import state_from_dict, state_to_dict
from model.clock.training import ClockTraining
from model.data import DataConfig, make_set

DATA = DataConfig(samples=40)
TINY = dict(prefix_start=4, grow_updates=8, tune_updates=4, updates_per_epoch=4, tune_warmup=2,
            hidden_size=8, grow_lbfgs=2)  # fmt: skip


@pytest.fixture(scope="module")
def sets():
    return make_set(1, DATA), make_set(3, DATA)


def start(sets, **kw) -> ClockTraining:
    return ClockTraining.start(ClockConfig(**{**TINY, **kw}), sets[0], sets[1], DATA)


@pytest.mark.parametrize("kw", [{"grow_lbfgs": 4}, {"grow_lbfgs": -1},
                                {"grow_lbfgs_after": -1}, {"grow_lbfgs_min_prefix": -1},
                                {"ignore_s": False}])  # fmt: skip
def test_config_rejects_bad_values(kw) -> None:
    with pytest.raises(ValueError):
        ClockConfig(**{**TINY, **kw})


def _record_calls(monkeypatch, loss: float | None = None) -> list[tuple[int, int]]:
    """Record (epoch, evaluations) of every L-BFGS call; with ``loss``, fake its outcome."""
    calls: list[tuple[int, int]] = []
    real = ClockTraining._grow_lbfgs

    def fake(self, prefix, evaluations):
        calls.append((self.state.epoch + 1, evaluations))
        return (loss, 0.5) if loss is not None else real(self, prefix, evaluations)

    monkeypatch.setattr(ClockTraining, "_grow_lbfgs", fake)
    return calls


def test_every_grow_epoch_ends_with_a_call_within_its_budget(sets, monkeypatch) -> None:
    calls = _record_calls(monkeypatch)
    t = start(sets, growth_threshold=1e-12)  # T never grows: 2 grow epochs, then the tune
    reports = list(t.epochs())
    assert [r.stage for r in reports] == [STAGE_GROW] * 2 + [STAGE_TUNE]
    assert calls == [(1, 2), (2, 2)]  # not in the tune stage
    assert [r.steps for r in reports] == [4, 4, 4] and t.state.updates == 12
    adam_only = start(sets, growth_threshold=1e-12, grow_lbfgs=0)
    adam_only.run_epoch()
    assert adam_only.state.history[0].val_mse != reports[0].val_mse


def test_a_call_that_learns_the_prefix_grows_t(sets, monkeypatch) -> None:
    _record_calls(monkeypatch, loss=0.0)
    t = start(sets, growth_threshold=1e-12, grow_updates=12)  # Adam's EMA never grows T
    assert [t.run_epoch().prefix for _ in range(3)] == [6, 9, 14]
    _record_calls(monkeypatch, loss=1.0)
    t = start(sets, growth_threshold=1e-12)
    assert t.run_epoch().prefix == 4


def test_after_a_plateau_only(sets, monkeypatch) -> None:
    calls = _record_calls(monkeypatch)
    t = start(sets, growth_threshold=1e-12, grow_updates=16, grow_lbfgs_after=1)
    reports = [t.run_epoch() for _ in range(4)]
    # T = 4 throughout: epoch 3 is the first to start after a whole flat epoch past the first.
    assert calls == [(3, 2), (4, 2)]
    assert [r.steps for r in reports] == [4] * 4


def test_not_at_or_under_min_prefix(sets, monkeypatch) -> None:
    calls = _record_calls(monkeypatch, loss=0.0)  # a call learns the prefix: T grows
    t = start(sets, growth_threshold=1e-12, grow_updates=16, grow_lbfgs_min_prefix=4)
    assert [t.run_epoch().prefix for _ in range(2)] == [4, 4] and calls == []
    t = start(sets, growth_threshold=1e-12, grow_updates=16, grow_lbfgs_min_prefix=3)
    assert t.run_epoch().prefix == 6 and calls == [(1, 2)]


def test_the_call_lowers_the_prefix_loss(sets) -> None:
    t = start(sets)
    cfg = t.state.config
    x, y, mask = prefix_batch(DATA, cfg.block_prefixes(10, DATA),
                              cfg.target_frequencies(10, DATA, STAGE_GROW))  # fmt: skip
    with torch.no_grad():
        out, _ = t.model(x, t.model.init_state(x.shape[0]))
        before = float(((out - y) ** 2 * mask).sum() / mask.sum())
    after, norm = t._grow_lbfgs(10, 20)
    assert after < before and np.isfinite(norm)
    assert float(t.model.lstm.weight_ih_l0.detach()[:, 0].abs().max()) == 0.0  # S still ignored


def test_checkpoint_continues_exactly(sets, tmp_path) -> None:
    kw = dict(growth_threshold=0.3, grow_updates=16)
    whole = start(sets, **kw)
    list(whole.epochs())
    half = start(sets, **kw)
    for r in half.epochs():
        if r.epoch == 2:
            break
    path = tmp_path / "clock.pt"
    atomic_save(state_to_dict(half.state), path)
    resumed = ClockTraining(sets[0], sets[1], state_from_dict(torch.load(path, weights_only=True)),
                            DATA)  # fmt: skip
    rest = list(resumed.epochs())
    assert [r.val_mse for r in rest] == [r.val_mse for r in whole.state.history[2:]]
    assert [r.prefix for r in rest] == [r.prefix for r in whole.state.history[2:]]
    for k, v in whole.state.weights.items():
        np.testing.assert_array_equal(resumed.state.weights[k], v)


@pytest.mark.parametrize("per_epoch, share", [(100, 50), (3, 2), (2, 1), (1, 0)])
def test_the_sweeps_rounds_fit_any_epoch(per_epoch, share) -> None:
    from model.clock.method import grow_lbfgs

    fields = grow_lbfgs(per_epoch)
    assert fields == {"grow_lbfgs": share, "grow_lbfgs_after": 1, "grow_lbfgs_min_prefix": 100,
                      "stall_rescue": 300}  # fmt: skip
    ClockConfig(updates_per_epoch=per_epoch, grow_updates=per_epoch, **fields)  # valid


def test_the_progress_line_names_the_rounds(sets) -> None:
    from model.clock.method import ClockMethod

    t = start(sets, growth_threshold=1e-12)
    line = ClockMethod().progress(t.state.config, t.run_epoch())
    assert line.startswith("stage grow (Adam, L-BFGS on plateaus) prefix 4")
    assert "one L-BFGS call on the prefix" in ClockMethod().describe(t.state.config)
