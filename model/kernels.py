"""The compiled LSTM forward pass: one step, and a whole set from zero states, torch-free.

Shared by the L=1 training kernel (``model.l1.fast``) and by the honest evaluation of any
delivered model (``predict``), whatever method trained it: a model file is evaluated without
importing torch. Weights travel as one flat float32 vector in ``PARAM_NAMES`` order; the
kernels work on the same vector with the two matrices transposed (``to_rows``): then
``theta[:rows * 4H]`` is one (n_in + H + 2, 4H) matrix whose rows are the weights of input x,
of state h, and the two biases, so the gates are ``[x, h, 1, 1] @ W``: 71 rows of 256
contiguous floats each, the layout in which the product and its outer-product gradient
vectorise.

Evaluation advances the blocks of a set together (their sequences are independent, from zero
states, with the same weights): each weight row is loaded once per step for all blocks.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numba
import numpy as np

from model.data import DataConfig, SignalSet, make_set
from model.jit import JIT
from model.params import PARAM_NAMES, Evaluation, Weights, init_weights, param_shapes, score
from model.vecmath import sigmoid, tanh


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


def _swap_matrices(theta: np.ndarray, n_in: int, hidden: int, to_rows: bool) -> np.ndarray:
    g4 = 4 * hidden
    out = np.array(theta, dtype=np.float32, copy=True)
    lo = 0
    for cols in (n_in, hidden):
        shape = (g4, cols) if to_rows else (cols, g4)
        out[lo : lo + g4 * cols] = theta[lo : lo + g4 * cols].reshape(shape).T.reshape(-1)
        lo += g4 * cols
    return out


def to_rows(theta: np.ndarray, n_in: int, hidden: int) -> np.ndarray:
    """``PARAM_NAMES`` layout -> the kernels' layout (both matrices transposed)."""
    return _swap_matrices(theta, n_in, hidden, to_rows=True)


def from_rows(theta: np.ndarray, n_in: int, hidden: int) -> np.ndarray:
    """The kernels' layout -> ``PARAM_NAMES`` layout."""
    return _swap_matrices(theta, n_in, hidden, to_rows=False)


@numba.njit(**JIT)
def hidden_from_size(size, n_in):
    # size = 4H*n_in + 4H*H + 8H + H + 1  ->  4H^2 + (4 n_in + 9) H + 1 - size = 0
    a = 4.0
    b = 4.0 * n_in + 9.0
    cc = 1.0 - size
    return int(round((-b + math.sqrt(b * b - 4.0 * a * cc)) / (2.0 * a)))


@numba.njit(**JIT)
def _gates_of_four(w, z, gates, b):
    """Blocks b..b+3: four weight rows at a time, each element loaded once for the four
    blocks, so a pass over the gates does 16 multiply-adds per weight load (1.7x the speed of
    one block at a time)."""
    rows = z.shape[1]
    g0, g1, g2, g3 = gates[b], gates[b + 1], gates[b + 2], gates[b + 3]
    j = 0
    while j + 4 <= rows:
        w0, w1, w2, w3 = w[j], w[j + 1], w[j + 2], w[j + 3]
        a0, a1, a2, a3 = z[b, j], z[b, j + 1], z[b, j + 2], z[b, j + 3]
        b0, b1, b2, b3 = z[b + 1, j], z[b + 1, j + 1], z[b + 1, j + 2], z[b + 1, j + 3]
        c0, c1, c2, c3 = z[b + 2, j], z[b + 2, j + 1], z[b + 2, j + 2], z[b + 2, j + 3]
        d0, d1, d2, d3 = z[b + 3, j], z[b + 3, j + 1], z[b + 3, j + 2], z[b + 3, j + 3]
        first = j == 0
        for k in range(g0.size):
            x0, x1, x2, x3 = w0[k], w1[k], w2[k], w3[k]
            s0 = a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
            s1 = b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
            s2 = c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
            s3 = d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3
            g0[k] = s0 if first else g0[k] + s0
            g1[k] = s1 if first else g1[k] + s1
            g2[k] = s2 if first else g2[k] + s2
            g3[k] = s3 if first else g3[k] + s3
        j += 4
    if j == 0:
        gates[b : b + 4, :] = 0.0
    while j < rows:
        wj = w[j]
        a, bb, c, d = z[b, j], z[b + 1, j], z[b + 2, j], z[b + 3, j]
        for k in range(g0.size):
            x = wj[k]
            g0[k] += a * x
            g1[k] += bb * x
            g2[k] += c * x
            g3[k] += d * x
        j += 1


@numba.njit(**JIT)
def _gates_of_one(w, z, gates, b):
    """Block b alone, with the same arithmetic per gate as ``_gates_of_four``."""
    rows = z.shape[1]
    g0 = gates[b]
    j = 0
    while j + 4 <= rows:
        w0, w1, w2, w3 = w[j], w[j + 1], w[j + 2], w[j + 3]
        a0, a1, a2, a3 = z[b, j], z[b, j + 1], z[b, j + 2], z[b, j + 3]
        first = j == 0
        for k in range(g0.size):
            s0 = a0 * w0[k] + a1 * w1[k] + a2 * w2[k] + a3 * w3[k]
            g0[k] = s0 if first else g0[k] + s0
        j += 4
    if j == 0:
        g0[:] = 0.0
    while j < rows:
        wj = w[j]
        a = z[b, j]
        for k in range(g0.size):
            g0[k] += a * wj[k]
        j += 1


@numba.njit(**JIT)
def gate_product(w, z, gates):
    """``gates = z @ w`` for z (blocks, rows), w (rows, 4H): the blocks four at a time, so
    that each weight is loaded once per four blocks, then any left one by one."""
    n_blocks = z.shape[0]
    b = 0
    while b + 4 <= n_blocks:
        _gates_of_four(w, z, gates, b)
        b += 4
    while b < n_blocks:
        _gates_of_one(w, z, gates, b)
        b += 1


@numba.njit(**JIT)
def advance(w, w_out, b_out, z, c, gates, y, h):
    """One time step of every block: z = [x, h, 1, 1] (x filled in by the caller) and c
    become the new state in place; the outputs go to y; h is scratch (blocks, hidden)."""
    gate_product(w, z, gates)
    n_blocks, hid = c.shape
    n_in = z.shape[1] - hid - 2
    for b in range(n_blocks):
        g, cb, hb = gates[b], c[b], h[b]
        # The new h goes to a buffer of its own, then into z in a loop of its own. Stored
        # straight into z, this loop stored into two arrays while loading a third: LLVM's
        # runtime overlap check then failed for some placements of the buffers (z below c,
        # most often) and the loop ran scalar, the whole evaluation 2.6x slower (slow in 120
        # of 192 layouts on an AMD EPYC; which runs were slow depended on the heap).
        for j in range(hid):
            ig = sigmoid(g[j])
            fg = sigmoid(g[hid + j])
            gg = tanh(g[2 * hid + j])
            og = sigmoid(g[3 * hid + j])
            cj = fg * cb[j] + ig * gg
            cb[j] = cj
            hb[j] = og * tanh(cj)
        # The output's sum is a loop of its own, with no stores: a loop that both stores and
        # sums gets a runtime overlap check from LLVM and ran vectorised or scalar depending
        # on where the buffers happened to lie, so the sum's rounding changed from run to run.
        acc = b_out
        for j in range(hid):
            acc += w_out[j] * hb[j]
        y[b] = acc
        for j in range(hid):
            z[b, n_in + j] = hb[j]


@numba.njit(**JIT)
def predict_rows(theta, inputs):
    """Honest predictions, weights in the kernels' layout: every block from zero states."""
    n_blocks, n_samples, n_in = inputs.shape
    hid = hidden_from_size(theta.size, n_in)
    g4 = 4 * hid
    rows = n_in + hid + 2
    w = theta[: rows * g4].reshape((rows, g4))
    w_out = theta[rows * g4 : rows * g4 + hid]
    b_out = theta[rows * g4 + hid]
    out = np.empty((n_blocks, n_samples), np.float32)
    z = np.zeros((n_blocks, rows), np.float32)  # [x, h, 1, 1] of each block
    z[:, n_in + hid :] = 1.0
    c = np.zeros((n_blocks, hid), np.float32)
    gates = np.empty((n_blocks, g4), np.float32)
    y = np.empty(n_blocks, np.float32)
    h = np.empty((n_blocks, hid), np.float32)
    for t in range(n_samples):
        for b in range(n_blocks):
            for j in range(n_in):
                z[b, j] = inputs[b, t, j]
        advance(w, w_out, b_out, z, c, gates, y, h)
        for b in range(n_blocks):
            out[b, t] = y[b]
    return out


def predict_flat(theta: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Honest predictions, weights in ``PARAM_NAMES`` layout, inputs (blocks, samples, n_in)."""
    n_in = inputs.shape[-1]
    hidden = int(hidden_from_size(theta.size, n_in))
    return predict_rows(to_rows(theta, n_in, hidden), inputs)


def predict(weights: Weights, data: SignalSet) -> np.ndarray:
    """Honest predictions of ``weights`` on ``data``: each block from a zero state."""
    n_in = data.inputs.shape[-1]
    hidden = weights["lstm.weight_hh_l0"].shape[1]
    theta = flatten(weights, n_in, hidden)
    return predict_flat(theta, np.ascontiguousarray(data.inputs, dtype=np.float32))


def evaluate(weights: Weights, data: SignalSet) -> Evaluation:
    """Honest MSE of ``weights`` on a whole set, overall and per frequency block."""
    return score(predict(weights, data), data)


def tiny_set(data: DataConfig) -> SignalSet:
    """Two samples a block of the data's kind: enough to compile every kernel on."""
    return make_set(0, replace(data, samples=2))


def warm_up(data: DataConfig, hidden: int) -> None:
    """Compile (or load from numba's cache) the honest evaluation for this data and size."""
    evaluate(init_weights(data.input_size, hidden, 0), tiny_set(data))
