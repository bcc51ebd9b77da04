"""The compiled loops of ``model.sequence``: an LSTM and its head over a chunk of steps, and
back through them. Torch-free, so that ``warm_up`` can fill numba's cache in a process of its
own: a clock worker then only loads the machine code (~120 MB with numba itself) when its
polish starts, and never pays for compiling it (LLVM's compile, whose memory the worker's heap
would keep: trial peaks of 617-635 MB in run O of bench/results/clock_sweeps.md)."""

from __future__ import annotations

import numba
import numpy as np

from model.jit import JIT
from model.kernels import gate_product
from model.vecmath import sigmoid, tanh


@numba.njit(**JIT)
def steps(x, y, m, w_rows, w_out, b_out, z, c, err, acts, zs, cs, hs, keep):
    """The steps of x (R, n, n_in) from state z = [x, h, 1] (R, n_in + H + 1) and c (R, H),
    both advanced in place. w_rows (n_in + H + 1, 4H): the input weights, the recurrent
    weights and the summed biases, one row per entry of z, so the gates are z @ w_rows.
    err (R, n): output - y (m is read in ``_back``). keep: also fill acts
    (R, n, 4H) with the gates' activations (i, f, g, o), zs with each step's z, and cs, hs
    (R, n, H) with the states after each step."""
    n_rows, n_steps, n_in = x.shape
    g4 = w_rows.shape[1]
    hid = g4 // 4
    gates = np.empty((n_rows, g4), np.float32)
    # Every loop stores into one array only: a loop storing into several gets a runtime
    # overlap check from LLVM and may run scalar (model.kernels.advance).
    for t in range(n_steps):
        for b in range(n_rows):
            for i in range(n_in):
                z[b, i] = x[b, t, i]
        gate_product(w_rows, z, gates)
        for b in range(n_rows):
            a, cb, zb = gates[b], c[b], z[b]
            if keep:
                zbt = zs[b, t]
                for i in range(zb.size):
                    zbt[i] = zb[i]
            for k in range(2 * hid):
                a[k] = sigmoid(a[k])
            for k in range(2 * hid, 3 * hid):
                a[k] = tanh(a[k])
            for k in range(3 * hid, g4):
                a[k] = sigmoid(a[k])
            for j in range(hid):
                cb[j] = a[hid + j] * cb[j] + a[j] * a[2 * hid + j]
            for j in range(hid):
                zb[n_in + j] = a[3 * hid + j] * tanh(cb[j])
            out = b_out
            for j in range(hid):
                out += w_out[j] * zb[n_in + j]
            err[b, t] = out - y[b, t]
            if keep:
                ab, cbt, hbt = acts[b, t], cs[b, t], hs[b, t]
                for k in range(g4):
                    ab[k] = a[k]
                for j in range(hid):
                    cbt[j] = cb[j]
                for j in range(hid):
                    hbt[j] = zb[n_in + j]


@numba.njit(**JIT)
def back(acts, cs, c_start, hs, err, m, g, w_out, w_hh, dh_next, dc_next, d_out):
    """Back through one chunk's steps (last first), kept by ``steps``: acts becomes the
    gradient with respect to each step's gate pre-activations. The loss is sum_r g_r * row
    r's error sum, sum_t m * err^2. c_start (R, H): the cell state before the chunk.
    dh_next, dc_next (R, H): the gradient flowing in from the steps after the chunk, updated
    in place to flow on. d_out (H + 1): the head's gradient (weights, bias), accumulated.
    w_hh (4H, H)."""
    n_rows, n_steps, g4 = acts.shape
    hid = g4 // 4
    one = np.float32(1.0)
    dg = np.empty((n_rows, g4), np.float32)
    dh = np.empty(hid, np.float32)
    tc = np.empty(hid, np.float32)
    dc = np.empty(hid, np.float32)
    for t in range(n_steps - 1, -1, -1):
        for b in range(n_rows):
            a, d, c, dcb, hb = acts[b, t], dg[b], cs[b, t], dc_next[b], hs[b, t]
            c_prev = cs[b, t - 1] if t > 0 else c_start[b]
            ig, fg, gg, og = a[:hid], a[hid : 2 * hid], a[2 * hid : 3 * hid], a[3 * hid :]
            di, df, dgg, do = d[:hid], d[hid : 2 * hid], d[2 * hid : 3 * hid], d[3 * hid :]
            d_y = np.float32(2.0) * g[b] * m[b, t] * err[b, t]  # d loss / d output
            for j in range(hid):
                d_out[j] += d_y * hb[j]
            d_out[hid] += d_y
            # One store array per loop, as in steps.
            for j in range(hid):
                dh[j] = d_y * w_out[j] + dh_next[b, j]
            for j in range(hid):
                tc[j] = tanh(c[j])
            for j in range(hid):
                dc[j] = dcb[j] + dh[j] * og[j] * (one - tc[j] * tc[j])
            for j in range(hid):
                dcb[j] = dc[j] * fg[j]
            for j in range(hid):
                di[j] = dc[j] * gg[j] * ig[j] * (one - ig[j])
            for j in range(hid):
                df[j] = dc[j] * c_prev[j] * fg[j] * (one - fg[j])
            for j in range(hid):
                dgg[j] = dc[j] * ig[j] * (one - gg[j] * gg[j])
            for j in range(hid):
                do[j] = dh[j] * tc[j] * og[j] * (one - og[j])
            for k in range(g4):
                a[k] = d[k]
        gate_product(w_hh, dg, dh_next)


def warm_up(hidden: int = 64, n_in: int = 5) -> None:
    """Compile (or load from numba's cache) both loops for the arrays ``model.sequence``
    passes them: float32, every array C-contiguous."""
    rows, n, g4 = 4, 3, 4 * hidden
    f = np.float32
    x, y, m = np.zeros((rows, n, n_in), f), np.zeros((rows, n), f), np.ones((rows, n), f)
    w_rows, w_out = np.zeros((n_in + hidden + 1, g4), f), np.zeros(hidden, f)
    z, c, err = np.zeros((rows, n_in + hidden + 1), f), np.zeros((rows, hidden), f), y.copy()
    acts, zs = np.zeros((rows, n, g4), f), np.zeros((rows, n, n_in + hidden + 1), f)
    cs, hs = np.zeros((rows, n, hidden), f), np.zeros((rows, n, hidden), f)
    steps(x, y, m, w_rows, w_out, f(0.0), z, c, err, acts, zs, cs, hs, True)
    back(acts, cs, c, hs, err, m, np.ones(rows, f), w_out, np.zeros((g4, hidden), f),
         c.copy(), c.copy(), np.zeros(hidden + 1, f))  # fmt: skip


if __name__ == "__main__":
    warm_up()
