"""The batched evaluation kernel and the vectorisable maths give the numbers the sequential
kernel (the C library's exp and tanh, one block after another) gives."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from bench.yardsticks.kernels_v1 import predict_flat_sequential
from model.data import DataConfig, make_set
from model.jit import JIT
from model.kernels import advance, flatten, from_rows, predict_flat, to_rows
from model.params import init_weights, score
from model.vecmath import expf, sigmoid, tanh


@numba.njit(**JIT)
def _apply(which, x, out):
    for i in range(x.size):
        if which == 0:
            out[i] = expf(x[i])
        elif which == 1:
            out[i] = sigmoid(x[i])
        else:
            out[i] = tanh(x[i])


@pytest.mark.parametrize(
    ("which", "exact", "lo", "hi", "rel"),
    [
        (0, np.exp, -80.0, 80.0, 3e-7),
        (1, lambda x: 1.0 / (1.0 + np.exp(-x)), -30.0, 30.0, 2e-7),
        (2, np.tanh, -20.0, 20.0, 2e-7),
    ],
)
def test_vector_maths_is_within_a_few_ulp(which, exact, lo, hi, rel) -> None:
    x = np.linspace(lo, hi, 200_001, dtype=np.float32)
    out = np.empty_like(x)
    _apply(which, x, out)
    want = exact(x.astype(np.float64))
    assert np.all(np.abs(out - want) <= rel * np.abs(want) + 1e-30)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_vector_maths_keeps_nan_and_saturates(which: int) -> None:
    x = np.array([np.nan, np.inf, -np.inf, 1e4, -1e4], np.float32)
    out = np.empty_like(x)
    _apply(which, x, out)
    assert np.isnan(out[0]) and np.isfinite(out[1:]).all()


def test_the_kernels_layout_round_trips() -> None:
    theta = flatten(init_weights(5, 16, seed=0), 5, 16)
    rows = to_rows(theta, 5, 16)
    assert not np.array_equal(rows, theta)
    np.testing.assert_array_equal(from_rows(rows, 5, 16), theta)


@pytest.mark.parametrize(("seed", "scale"), [(0, 1.0), (1, 3.0), (2, 3.0)])
def test_batched_evaluation_equals_the_sequential_one(seed: int, scale: float) -> None:
    """Scale 3 drives the gates into saturation, where a poor exp or tanh would show."""
    data = make_set(seed, DataConfig(samples=200))
    weights = {k: v * scale for k, v in init_weights(5, 64, seed).items()}
    theta = flatten(weights, 5, 64)
    old = predict_flat_sequential(theta, data.inputs)
    new = predict_flat(theta, data.inputs)
    assert np.abs(old).max() > 0.05  # the model says something
    np.testing.assert_allclose(new, old, atol=1e-6, rtol=0)
    assert score(new, data).mse == pytest.approx(score(old, data).mse, abs=1e-6)


def test_batched_evaluation_keeps_blocks_apart() -> None:
    """Each block starts from zero states: predicting one block alone gives its row."""
    data = make_set(3, DataConfig(samples=50))
    theta = flatten(init_weights(5, 64, seed=3), 5, 64)
    every = predict_flat(theta, data.inputs)
    for b in range(data.inputs.shape[0]):
        alone = predict_flat(theta, data.inputs[b : b + 1])
        np.testing.assert_array_equal(alone, every[b : b + 1])


def test_a_step_gives_the_same_bits_wherever_its_buffers_lie() -> None:
    """LLVM guards a vectorised loop that stores with a runtime overlap check and falls back
    to scalar code, whose sums round differently: the buffers of a run are allocated side by
    side, so with a sum in such a loop the honest MSE changed in the 11th digit from one run of
    the same sweep to the next. Here the state buffers are placed at every small distance."""
    weights = {k: 2 * v for k, v in init_weights(5, 64, seed=0).items()}
    theta = to_rows(flatten(weights, 5, 64), 5, 64)
    w = theta[: 71 * 256].reshape(71, 256)
    w_out, b_out = theta[71 * 256 : 71 * 256 + 64], theta[-1]
    data = make_set(0, DataConfig(samples=500))
    seen = set()
    for gap in range(0, 128, 4):
        buf = np.zeros(4 * 71 + 4 * 64 + 4 * 256 + 2 * gap, np.float32)
        z = buf[: 4 * 71].reshape(4, 71)
        c = buf[4 * 71 + gap : 4 * 71 + gap + 4 * 64].reshape(4, 64)
        gates = buf[4 * 71 + 4 * 64 + 2 * gap :].reshape(4, 256)
        z[:, 69:] = 1.0
        y, h = np.empty(4, np.float32), np.empty((4, 64), np.float32)
        ys = []
        for t in range(data.inputs.shape[1]):
            z[:, :5] = data.inputs[:, t]
            advance(w, w_out, b_out, z, c, gates, y, h)
            ys.append(y.copy())
        seen.add(np.array(ys).tobytes())
    assert len(seen) == 1
