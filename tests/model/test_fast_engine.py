"""The compiled engine computes what the reference (nn.LSTM + autograd + torch Adam) computes."""

from __future__ import annotations

import numpy as np
import pytest

from model.data import DataConfig, make_set
from model.kernels import flatten, unflatten
from model.l1.config import TrainConfig
from model.l1.fast import FastEngine
from model.l1.reference import ReferenceEngine
from model.l1.training import Training
from model.lstm import build_model, weights_of

TOL = 1e-5


@pytest.fixture(scope="module")
def both() -> tuple[Training, Training]:
    """3 epochs x 4 blocks x 50 steps = 600 steps, crossing block and epoch boundaries; with
    plateau patience 0 the validation MSE rises at epoch 2 and the lr is halved for epoch 3."""
    d = DataConfig(samples=50)
    train, val = make_set(1, d), make_set(3, d)
    runs = []
    for engine in ("reference", "fast"):
        cfg = TrainConfig(lr=1e-3, epochs=3, plateau_patience=0, engine=engine, seed=1)
        t = Training.start(cfg, train, val)
        list(t.epochs())
        runs.append(t)
    return runs[0], runs[1]


def test_the_plateau_schedule_acted(both: tuple[Training, Training]) -> None:
    ref, _ = both
    lrs = [r.lr for r in ref.state.history]
    assert lrs[0] == lrs[1] == 1e-3 and lrs[2] == pytest.approx(5e-4)


def test_per_epoch_numbers_agree(both: tuple[Training, Training]) -> None:
    ref, fast = both
    for a, b in zip(ref.state.history, fast.state.history, strict=True):
        assert a.steps == b.steps == 200
        assert a.lr == b.lr
        for name in ("online_loss", "train_mse", "val_mse", "grad_norm_mean", "grad_norm_max"):
            assert getattr(a, name) == pytest.approx(getattr(b, name), abs=TOL), name


def test_weights_and_adam_moments_agree(both: tuple[Training, Training]) -> None:
    ref, fast = both
    assert ref.state.adam.step == fast.state.adam.step == 600
    for name, w in ref.state.weights.items():
        np.testing.assert_allclose(fast.state.weights[name], w, atol=TOL, rtol=0, err_msg=name)
        np.testing.assert_allclose(
            fast.state.adam.exp_avg[name], ref.state.adam.exp_avg[name], atol=TOL, rtol=0
        )
        np.testing.assert_allclose(
            fast.state.adam.exp_avg_sq[name], ref.state.adam.exp_avg_sq[name], atol=TOL, rtol=0
        )
    # And they really moved: the comparison is not between two untouched copies.
    start = weights_of(build_model(5, 64, seed=1))
    moved = max(np.abs(ref.state.weights[k] - start[k]).max() for k in start)
    assert moved > 100 * TOL


def test_clipping_is_exercised_and_agrees() -> None:
    d = make_set(1, DataConfig(samples=30))
    w = weights_of(build_model(5, 64, seed=4))
    ref, fast = ReferenceEngine(w, 5, 64), FastEngine(w, 5, 64)
    a = ref.train_epoch(d, lr=1e-3, clip=0.05)
    b = fast.train_epoch(d, lr=1e-3, clip=0.05)
    assert a.grad_norm_max > 0.05  # the clip was active on some steps
    assert a.grad_norm_max == pytest.approx(b.grad_norm_max, rel=1e-5)
    for k, v in ref.weights().items():
        np.testing.assert_allclose(fast.weights()[k], v, atol=TOL, rtol=0)


def test_non_finite_input_stops_without_touching_the_weights() -> None:
    d = make_set(1, DataConfig(samples=20))
    d.inputs[1, 5, 0] = np.nan
    w = weights_of(build_model(5, 64, seed=0))
    for engine in (ReferenceEngine(w, 5, 64), FastEngine(w, 5, 64)):
        steps = engine.train_epoch(d, lr=1e-3, clip=1.0)
        assert steps.non_finite and steps.steps == 25  # block 0 (20) + 5 steps of block 1
        assert all(np.isfinite(v).all() for v in engine.weights().values())


def test_flat_layout_round_trips() -> None:
    w = weights_of(build_model(5, 16, seed=0))
    back = unflatten(flatten(w, 5, 16), 5, 16)
    for k in w:
        np.testing.assert_array_equal(back[k], w[k])


def test_moments_flushed_below_tiny_still_agree_with_the_reference() -> None:
    """In a 1,000-step block the one-hot weights of the other frequencies get zero gradient, so
    their first moments decay by 0.9 a step below 1e-30, where the fast engine flushes them to
    zero (the reference keeps subnormals): the weights must still agree."""
    d = make_set(1, DataConfig(samples=1000))
    w = weights_of(build_model(5, 64, seed=0))
    ref, fast = ReferenceEngine(w, 5, 64), FastEngine(w, 5, 64)
    ref.train_epoch(d, lr=1e-4, clip=1.0)
    fast.train_epoch(d, lr=1e-4, clip=1.0)
    flushed = fast.adam_state().exp_avg["lstm.weight_ih_l0"][:, 1:4]  # one-hot of blocks 0-2
    assert (flushed == 0).any()  # the flush happened...
    tiny = np.abs(ref.adam_state().exp_avg["lstm.weight_ih_l0"][:, 1:4])
    assert ((tiny > 0) & (tiny < 1e-30)).any()  # ...where the reference kept a subnormal
    for k, v in ref.weights().items():
        np.testing.assert_allclose(fast.weights()[k], v, atol=TOL, rtol=0, err_msg=k)
