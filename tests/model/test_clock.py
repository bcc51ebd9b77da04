"""Clock learning on tiny data: schedules, reports, stages and checkpoints that continue."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from model.checkpoint import atomic_save
from model.clock.batch import draw_batch, noise_rng, prefix_loss, prefix_mask, row_error_sums
from model.clock.config import STAGE_GROW, STAGE_TUNE, ClockConfig
from model.clock.method import ClockMethod
from model.clock.state import initial_model, state_from_dict, state_to_dict
from model.clock.training import ClockTraining
from model.data import DataConfig, make_set, mixed_signal
from model.method import STOP_MAX_EPOCHS

DATA = DataConfig(samples=40)
TINY = dict(prefix_start=4, grow_updates=6, tune_updates=4, updates_per_epoch=2, tune_warmup=2,
            realisations=2, tune_realisations=2, hidden_size=8)  # fmt: skip


@pytest.fixture(scope="module")
def sets():
    return make_set(1, DATA), make_set(3, DATA)


def start(sets, stall_check=None, **kw) -> ClockTraining:
    train, val = sets
    return ClockTraining.start(ClockConfig(**{**TINY, **kw}), train, val, DATA, stall_check)


def budget_spent(reports, full_length, last_grow_epoch):
    """A stall rule (model.method.StallCheck) that calls every grow budget spent short of full
    length stalled: the sweep's "never started" case, forced on tiny data."""
    if len(reports) >= last_grow_epoch and reports[-1].prefix < full_length:
        return "budget spent"
    return None


@pytest.mark.parametrize(
    "kw",
    [
        {"realisations": 0},
        {"growth": 1.0},
        {"grow_updates": 3, "updates_per_epoch": 2},
        {"grow_updates": 0, "tune_updates": 0},
        {"lr_scale": 0.0},
        {"ema": 1.0},
        {"tune_lr_min": 1.0},
        {"glide_cycles": -1.0},
        {"growth_gate": "median"},
        {"grow_engine": "gpu"},
    ],
)
def test_config_rejects_bad_values(kw) -> None:
    with pytest.raises(ValueError):
        ClockConfig(**kw)


def test_schedules_are_functions_of_the_update_count() -> None:
    cfg = ClockConfig(lr_scale=3e-3, tune_updates=200, tune_warmup=50)
    assert cfg.grow_lr(100) == 3e-3 and cfg.grow_lr(300) == 3e-3
    assert cfg.grow_lr(10_000) == pytest.approx(3e-3 * (300 / 10_000) ** 0.75)
    lrs = [cfg.tune_lr(k) for k in range(200)]
    assert lrs[0] == pytest.approx(5e-5 / 50) and lrs[49] == pytest.approx(5e-5)
    assert lrs[-1] == pytest.approx(1e-6) and bool(np.all(np.diff(lrs[49:]) <= 0))
    assert cfg.next_prefix(100, 10_000) == 150 and cfg.next_prefix(9_000, 10_000) == 10_000


def test_block_prefixes_span_min_cycles() -> None:
    d = DataConfig()
    assert ClockConfig(min_cycles=1.0).block_prefixes(100, d) == (1000, 334, 200, 143)
    assert ClockConfig(min_cycles=1.0).block_prefixes(500, d) == (1000, 500, 500, 500)
    assert ClockConfig(min_cycles=0.0).block_prefixes(100, d) == (100,) * 4
    assert ClockConfig(min_cycles=2.0).block_prefixes(20_000, d) == (10_000,) * 4


def test_glide_raises_slow_targets_only_while_growing() -> None:
    d, cfg = DataConfig(), ClockConfig(glide_cycles=0.75)
    assert cfg.target_frequencies(100, d, STAGE_GROW) == (7.5, 7.5, 7.5, 7.5)
    assert cfg.target_frequencies(500, d, STAGE_GROW) == (1.5, 3.0, 5.0, 7.0)
    assert cfg.target_frequencies(100, d, STAGE_TUNE) == d.frequencies
    assert ClockConfig(glide_cycles=0).target_frequencies(100, d, STAGE_GROW) == d.frequencies
    _, y = draw_batch(d, 50, 1, noise_rng(0), (7.0, 3.0, 5.0, 7.0))
    np.testing.assert_allclose(y[0].numpy(), y[3].numpy())


def test_batch_is_the_task_formula_from_a_disjoint_generator() -> None:
    x, y = draw_batch(DATA, 10, 3, noise_rng(0))
    assert x.shape == (12, 10, 5) and y.shape == (12, 10)
    # Realisation 0 is the task's S from the same generator state, shared by its 4 blocks.
    s = mixed_signal(replace(DATA, samples=10), noise_rng(0))
    for b in range(4):
        np.testing.assert_allclose(x[b, :, 0].numpy(), s, rtol=1e-6)
        assert (x[b, :, 1 + b] == 1).all() and x[b, :, 1:].sum() == 10
    assert not np.allclose(x[4, :, 0].numpy(), s)  # the next realisation is fresh noise
    # Never an evaluation set's noise: those come from default_rng(seed).
    assert not np.allclose(s, make_set(0, DATA).mixed[:10])


def test_balanced_loss_weights_the_worst_block_but_reports_plain_mse() -> None:
    y = torch.zeros(4, 3)
    out = torch.tensor([[1.0] * 3, [0.0] * 3, [0.0] * 3, [0.0] * 3])
    mask = prefix_mask((3, 3, 3, 3), 3)
    sums = row_error_sums(out, y, mask)
    plain_loss, plain, worst = prefix_loss(sums, mask, balanced=False)
    bal_loss, plain_b, worst_b = prefix_loss(sums, mask, balanced=True)
    assert plain == plain_b == pytest.approx(0.25) and float(plain_loss) == pytest.approx(0.25)
    assert worst == worst_b == pytest.approx(1.0)
    assert float(bal_loss) == pytest.approx(1.0)  # w = (4, 0, 0, 0)
    # The mask drops steps beyond a block's prefix.
    short = prefix_mask((1, 3, 3, 3), 3)
    masked = prefix_loss(row_error_sums(out, y, short), short, balanced=False).plain
    assert masked == pytest.approx(0.25)


def test_stages_reports_and_stop(sets) -> None:
    t = start(sets)
    reports = list(t.epochs())
    assert [r.epoch for r in reports] == [1, 2, 3, 4, 5]
    assert [r.stage for r in reports] == [STAGE_GROW] * 3 + [STAGE_TUNE] * 2
    assert reports[-1].stop_reason == STOP_MAX_EPOCHS and t.finished
    assert t.state.updates == 10 and t.state.prefix == DATA.samples
    for r in reports:
        assert r.steps == 2 and r.seconds > 0 and math.isfinite(r.train_mse)
        assert 0 < r.grad_norm_mean <= r.grad_norm_max and len(r.val_per_freq) == 4
    assert t.state.best_val == min(r.val_mse for r in reports)
    assert reports[t.state.best_epoch - 1].val_mse == t.state.best_val
    best = t.evaluate(sets[1], t.state.best_weights).mse
    assert best == pytest.approx(t.state.best_val)


def test_prefix_grows_when_learnt(sets) -> None:
    t = start(sets, growth_threshold=10.0, min_cycles=0.0)  # every update counts as learnt
    first = t.run_epoch()
    assert first.prefix == 9 and t.state.prefix == 9  # 4 -> 6 -> 9
    assert first.lr == pytest.approx(ClockConfig(**TINY).grow_lr(6))


def test_tune_starts_when_grown_and_the_run_ends_early(sets) -> None:
    # Every update counts as learnt: T goes 4 -> 6 -> 9, -> 14 -> 21, -> 32 -> 40 (2 a epoch).
    grow = dict(growth_threshold=10.0, grow_updates=10)
    t = start(sets, tune_when_grown=True, **grow)
    stages = [(r.stage, r.prefix) for r in t.epochs()]
    assert stages[:3] == [(STAGE_GROW, 9), (STAGE_GROW, 21), (STAGE_GROW, DATA.samples)]
    assert [s for s, _ in stages[3:]] == [STAGE_TUNE] * 2  # tune_updates 4, 2 per epoch
    assert t.state.tune_start == 6 and t.state.updates == 10 and t.state.stop_reason
    # Without it the whole grow budget is spent first: 5 grow epochs, then 2 tune.
    assert len(list(start(sets, tune_when_grown=False, **grow).epochs())) == 7


@pytest.mark.parametrize("until", [20, 21])
def test_grow_until_ends_the_grow_stage_at_that_prefix(sets, until: int) -> None:
    grow = dict(growth_threshold=10.0, grow_updates=10)
    t = start(sets, grow_until=until, **grow)
    stages = [(r.stage, r.prefix) for r in t.epochs()]
    # T goes 9, 21 in the first two epochs: over at 21, then tune at full length from there.
    assert stages[:2] == [(STAGE_GROW, 9), (STAGE_GROW, 21)]
    assert [s for s, _ in stages[2:]] == [STAGE_TUNE] * 2
    assert t.state.tune_start == 4 and t.state.prefix == DATA.samples
    # Above the block length it is the block length.
    assert ClockConfig(**TINY, grow_until=10**6).grown_at(DATA.samples) == DATA.samples


@pytest.mark.parametrize("at_once", [True, False])
def test_the_grow_stage_ends_at_the_update_that_reaches_its_prefix(sets, at_once) -> None:
    # T goes 9 in epoch 1 and reaches 14 at epoch 2's first update: with grow_ends_at_once
    # the epoch stops there, else its second update runs at T = 14 too (and grows it to 21).
    grow = dict(growth_threshold=10.0, grow_updates=10, grow_until=14)
    t = start(sets, grow_ends_at_once=at_once, **grow)
    first, second = t.run_epoch(), t.run_epoch()
    assert (first.prefix, second.prefix) == (9, 14 if at_once else 21)
    assert t.state.stage == STAGE_TUNE
    assert first.steps == 2 and second.steps == (1 if at_once else 2)
    assert t.state.tune_start == t.state.updates == (3 if at_once else 4)
    tune = list(t.epochs())
    assert [r.stage for r in tune] == [STAGE_TUNE] * 2 and tune[0].steps == 2
    assert t.state.updates == t.state.tune_start + TINY["tune_updates"]


def test_the_grow_stage_computes_alike_in_either_engine(sets, monkeypatch) -> None:
    # One grow epoch, Adam's updates then an L-BFGS call on the prefix, from the same weights:
    # the compiled loops (model.sequence) give torch's numbers to float32 rounding.
    from model import sequence

    calls = []
    real = sequence.error_sums
    monkeypatch.setattr(sequence, "error_sums", lambda *a: calls.append(1) or real(*a))
    grow = dict(growth_threshold=1e-9, grow_lbfgs=1, grow_lbfgs_after=0)
    reports = {}
    for engine in ("compiled", "torch"):
        calls.clear()
        reports[engine] = start(sets, grow_engine=engine, **grow).run_epoch()
        assert bool(calls) == (engine == "compiled")
    a, b = reports["compiled"], reports["torch"]
    assert a.online_loss == pytest.approx(b.online_loss, rel=1e-4)
    assert a.val_mse == pytest.approx(b.val_mse, rel=1e-4)


def test_an_epoch_that_reaches_grow_until_is_never_stalled(sets) -> None:
    # T reaches grow_until = 21 at the grow budget's last update, where the stall rule's
    # "never started" case judges the attempt: its weights, untrained beyond T, score a
    # block at ~0.5, yet it grew. Read against the block length it would start over.
    grow = dict(growth_threshold=10.0, grow_updates=4, grow_until=21, max_restarts=2)
    t = start(sets, budget_spent, **grow)
    reports = [t.run_epoch(), t.run_epoch()]
    assert [r.prefix for r in reports] == [9, 21] and max(reports[-1].val_per_freq) > 0.2
    assert t.state.attempt == 0 and t.state.stage == STAGE_TUNE and not reports[-1].restarted


@pytest.mark.parametrize("gate, grows", [("mean", True), ("worst", False)])
def test_growth_gate_reads_the_mean_or_the_worst_block(sets, monkeypatch, gate, grows) -> None:
    import model.clock.training as training

    real = training.prefix_loss

    def fixed(sums, mask, balanced):  # mean 0.1 is learnt at 0.3, the worst block 0.5 is not
        return real(sums, mask, balanced)._replace(plain=0.1, worst=0.5)

    monkeypatch.setattr(training, "prefix_loss", fixed)
    report = start(sets, growth_threshold=0.3, ema=0.0, growth_gate=gate).run_epoch()
    assert (report.prefix > TINY["prefix_start"]) is grows


def test_same_seed_same_run_and_checkpoint_continues_exactly(sets, tmp_path) -> None:
    whole = start(sets)
    list(whole.epochs())
    half = start(sets)
    for r in half.epochs():
        if r.epoch == 2:
            break
    path = tmp_path / "clock.pt"
    atomic_save(state_to_dict(half.state), path)
    state = state_from_dict(torch.load(path, weights_only=True))
    resumed = ClockTraining(sets[0], sets[1], state, DATA)
    rest = list(resumed.epochs())
    assert [r.val_mse for r in rest] == [r.val_mse for r in whole.state.history[2:]]
    for k, v in whole.state.weights.items():
        np.testing.assert_array_equal(resumed.state.weights[k], v)


def test_forget_bias_shifts_only_the_forget_gate() -> None:
    plain = initial_model(ClockConfig(hidden_size=8), DATA)
    shifted = initial_model(ClockConfig(hidden_size=8, forget_bias=1.5), DATA)
    diff = (shifted.lstm.bias_ih_l0 - plain.lstm.bias_ih_l0).detach()
    assert torch.allclose(diff, torch.tensor([0.0] * 8 + [1.5] * 8 + [0.0] * 16))
    assert torch.equal(shifted.lstm.weight_hh_l0, plain.lstm.weight_hh_l0)


def _learnt_once(monkeypatch) -> None:
    """The first update's prefix counts as learnt (T grows once), no later one does."""
    import model.clock.training as training

    real, calls = training.prefix_loss, []

    def fixed(sums, mask, balanced):
        calls.append(1)
        plain = 0.0 if len(calls) == 1 else 0.5
        return real(sums, mask, balanced)._replace(plain=plain, worst=plain)

    monkeypatch.setattr(training, "prefix_loss", fixed)


def test_a_stalled_grow_restarts_from_new_weights_within_its_limit(sets, monkeypatch) -> None:
    # T grows 4 -> 6 in epoch 1, then stays unlearnt; the rule the trainer is given calls T
    # unchanged for two epochs stalled, and sees only the current attempt's grow epochs.
    _learnt_once(monkeypatch)
    seen = []

    def flat_twice(reports, full_length, last_grow_epoch):
        seen.append(([(r.attempt, r.stage) for r in reports], full_length, last_grow_epoch))
        return "flat" if len(reports) >= 3 and reports[-3].prefix == reports[-1].prefix else None

    t = start(sets, flat_twice, ema=0.0, max_restarts=1, grow_updates=8)
    first = initial_model(t.state.config, DATA, attempt=1)
    reports = [t.run_epoch() for _ in range(3)]
    assert [r.prefix for r in reports] == [6, 6, 6]
    assert t.state.attempt == 1  # flat at 6 twice: restarted
    assert seen == [([(0, STAGE_GROW)] * n, DATA.samples, 4) for n in (1, 2, 3)]
    assert [r.restarted for r in reports] == [False, False, True]
    assert t.state.attempt_start == 6 and t.state.prefix == TINY["prefix_start"]
    for name, p in first.state_dict().items():
        np.testing.assert_array_equal(t.state.weights[name], p.numpy())
    rest = list(t.epochs())  # no second restart; the budgets count from the restart
    assert t.state.attempt == 1 and t.state.updates == 6 + 8 + 4
    assert {r.attempt for r in rest} == {1} and not any(r.restarted for r in rest)
    assert [r.judged for r in rest] == [False] * 4 + [True] * 2
    assert rest[-1].stop_reason == STOP_MAX_EPOCHS


def test_a_grow_budget_spent_with_a_block_unstarted_restarts(sets) -> None:
    t = start(sets, budget_spent, growth_threshold=1e-12, max_restarts=1)
    reports = list(t.epochs())
    # Attempt 0: 3 grow epochs, restarted; attempt 1: 3 grow epochs, then 2 tune epochs.
    assert [r.restarted for r in reports] == [False, False, True] + [False] * 5
    assert [r.attempt for r in reports] == [0] * 3 + [1] * 5
    assert [r.stage for r in reports] == [STAGE_GROW] * 6 + [STAGE_TUNE] * 2
    # The progress line counts attempts from 1, out of all a trial may make, and says when one
    # is given up.
    lines = [ClockMethod().progress(t.state.config, r) for r in reports]
    assert lines[0] == "stage grow (Adam) prefix 4 attempt 1/2"
    assert lines[2].endswith("attempt 1/2, stalled: starting over")
    assert lines[3].endswith("attempt 2/2")
    assert lines[-1] == "stage tune (Adam) prefix 40 attempt 2/2"


def test_other_seed_other_run(sets) -> None:
    a, b = start(sets, seed=0), start(sets, seed=1)
    assert a.run_epoch().val_mse != b.run_epoch().val_mse


@pytest.mark.parametrize("ignore_s", [True, False])
def test_the_train_mse_is_the_train_sets_own(sets, ignore_s) -> None:
    # Ignoring S, the train set is not evaluated again: its MSE is the validation set's, which
    # must then be what evaluating it gives, bit for bit, at every epoch and after restarts.
    t = start(sets, budget_spent, ignore_s=ignore_s, growth_threshold=1e-12, max_restarts=1)
    reports = []
    for report in t.epochs():
        reports.append(report)
        train, val = (t.evaluate(s, t.state.weights).mse for s in sets)
        assert (train == val) is ignore_s  # restarted and reloaded weights included
        if not report.restarted and report.stage == t.state.stage:  # the same weights
            assert report.train_mse == train and report.val_mse == val
    assert any(r.restarted for r in reports) and reports[-1].stage == STAGE_TUNE


def test_a_long_pass_in_checkpointed_chunks_gives_the_one_piece_gradient(monkeypatch) -> None:
    # Long sequences are backpropagated chunk by chunk (model.clock.batch.CHUNK_STEPS) to save
    # memory: the loss and gradient must be those of one pass over the whole sequence.
    import model.clock.batch as batch

    model = initial_model(ClockConfig(hidden_size=8), DATA)
    x, y = draw_batch(DATA, 40, 2, noise_rng(0))
    mask = prefix_mask((40, 31, 17, 40), 40)

    def gradient(chunk: int) -> tuple[float, list[np.ndarray]]:
        monkeypatch.setattr(batch, "CHUNK_STEPS", chunk)
        model.zero_grad()
        loss = prefix_loss(
            batch.error_sums(model, x, y, mask, compiled=False), mask, balanced=True
        ).loss
        loss.backward()
        return float(loss), [p.grad.numpy().copy() for p in model.parameters()]

    whole, chunked = gradient(40), gradient(7)  # 6 chunks, the last one short
    assert chunked[0] == pytest.approx(whole[0], rel=1e-6)
    for a, b in zip(whole[1], chunked[1], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-7)
    assert any(np.any(g != 0) for g in whole[1])
