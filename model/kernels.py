"""The compiled LSTM forward pass: one step, and a whole set from zero states, torch-free.

Shared by the L=1 training kernel (``model.l1.fast``) and by the honest evaluation of any
delivered model (``predict``), whatever method trained it: a model file is evaluated without
importing torch. Weights travel as one flat float32 vector in ``PARAM_NAMES`` order.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from model.data import SignalSet
from model.params import PARAM_NAMES, Evaluation, Weights, param_shapes, score

# fastmath lets LLVM vectorise the reductions and the Adam loop (8 floats per AVX2 op);
# error_model="numpy" drops the zero-division checks that would block vectorisation. The
# reordering changes the last bits only; tests/test_fast_engine.py holds it to 1e-5.
JIT = dict(
    cache=True,
    nogil=True,
    # Every fast-math flag but "nnan" and "ninf": the NaN/Inf check must survive.
    fastmath={"nsz", "arcp", "contract", "afn", "reassoc"},
    error_model="numpy",
)


def flatten(weights: Weights, input_size: int, hidden: int) -> np.ndarray:
    parts = [np.asarray(weights[n], dtype=np.float32).reshape(-1) for n in PARAM_NAMES]
    flat = np.concatenate(parts)
    assert flat.size == sum(math.prod(s) for s in param_shapes(input_size, hidden).values())
    return flat


def unflatten(flat: np.ndarray, input_size: int, hidden: int) -> Weights:
    out: Weights = {}
    offset = 0
    for name, shape in param_shapes(input_size, hidden).items():
        size = math.prod(shape)
        out[name] = flat[offset : offset + size].reshape(shape).copy()
        offset += size
    return out


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
def hidden_from_size(size, n_in):
    # size = 4H*n_in + 4H*H + 8H + H + 1  ->  4H^2 + (4 n_in + 9) H + 1 - size = 0
    a = 4.0
    b = 4.0 * n_in + 9.0
    cc = 1.0 - size
    return int(round((-b + math.sqrt(b * b - 4.0 * a * cc)) / (2.0 * a)))


@numba.njit(**JIT)
def predict_flat(theta, inputs):
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


def predict(weights: Weights, data: SignalSet) -> np.ndarray:
    """Honest predictions of ``weights`` on ``data``: each block from a zero state."""
    n_in = data.inputs.shape[-1]
    hidden = weights["lstm.weight_hh_l0"].shape[1]
    theta = flatten(weights, n_in, hidden)
    return predict_flat(theta, np.ascontiguousarray(data.inputs, dtype=np.float32))


def evaluate(weights: Weights, data: SignalSet) -> Evaluation:
    """Honest MSE of ``weights`` on a whole set, overall and per frequency block."""
    return score(predict(weights, data), data)
