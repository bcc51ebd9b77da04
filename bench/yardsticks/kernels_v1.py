"""The honest evaluation as it was before the batched kernels (commit c48fafc), frozen: one
block after another, one matrix-vector product per step, the C library's exp and tanh, weights
in ``PARAM_NAMES`` layout. Kept as the yardstick the batched evaluation is held to
(``tests/model/test_kernels.py``) and for the previous engine (``bench.yardsticks.fast_v1``);
nothing in a sweep uses it.
"""

from __future__ import annotations

import numba
import numpy as np

from model.jit import JIT
from model.kernels import hidden_from_size


@numba.njit(**JIT)
def _sigmoid(x):
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-x))


@numba.njit(**JIT)
def forward_step(theta, n_in, hid, x, h, c, gates):
    """One LSTM step + head; fills ``gates`` with activated i, f, g, o; updates h, c in place.
    Returns the output."""
    g4 = 4 * hid
    wih = theta[: g4 * n_in].reshape((g4, n_in))
    o = g4 * n_in
    whh = theta[o : o + g4 * hid].reshape((g4, hid))
    o += g4 * hid
    bih = theta[o : o + g4]
    bhh = theta[o + g4 : o + 2 * g4]
    o += 2 * g4
    wout = theta[o : o + hid]
    bout = theta[o + hid]
    for k in range(g4):
        acc = bih[k] + bhh[k]
        for j in range(n_in):
            acc += wih[k, j] * x[j]
        for j in range(hid):
            acc += whh[k, j] * h[j]
        gates[k] = acc
    y = bout
    for j in range(hid):
        ig = _sigmoid(gates[j])
        fg = _sigmoid(gates[hid + j])
        gg = np.tanh(gates[2 * hid + j])
        og = _sigmoid(gates[3 * hid + j])
        gates[j], gates[hid + j], gates[2 * hid + j], gates[3 * hid + j] = ig, fg, gg, og
        c[j] = fg * c[j] + ig * gg
        h[j] = og * np.tanh(c[j])
        y += wout[j] * h[j]
    return y


@numba.njit(**JIT)
def predict_flat_sequential(theta, inputs):
    """The evaluation before ``predict_rows`` (one block after another, one matrix-vector
    product per step, the C library's exp and tanh): kept for the benchmark and as the
    equality test's yardstick."""
    n_blocks, n_samples, n_in = inputs.shape
    hid = hidden_from_size(theta.size, n_in)
    out = np.empty((n_blocks, n_samples), np.float32)
    h = np.zeros(hid, np.float32)
    c = np.zeros(hid, np.float32)
    gates = np.zeros(4 * hid, np.float32)
    for blk in range(n_blocks):
        h[:] = 0.0
        c[:] = 0.0
        for t in range(n_samples):
            out[blk, t] = forward_step(theta, n_in, hid, inputs[blk, t], h, c, gates)
    return out
