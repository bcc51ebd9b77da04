"""The compiled engine: the reference L=1 step, hand-differentiated, in one numba loop.

Eager PyTorch spends about 1 ms per step on per-operation overhead for a model this small;
the arithmetic itself (one 256x69 matrix-vector product, its one-step gradients, a clip and an
Adam update of ~18k weights) takes microseconds. So the whole epoch runs inside one compiled
function over one flat float32 parameter vector, with the same order of operations as the
reference: forward, MSE, backward through one step (the carried state is detached), global
gradient-norm clip, single-tensor Adam with bias correction, then carry (h, c) to the next
sample. The gradient is never stored: its norm has a closed form (each weight gradient is an
outer product), and the clipped gradient is rebuilt element by element inside the Adam loop.

The weights are held in the kernels' layout (``model.kernels.to_rows``): the gate weights and
both biases are one 71 x 256 matrix W with gates = [x, h, 1, 1] @ W, so the Adam pass is 71
contiguous vectorised rows, and it computes the next step's gates from each updated row as it
goes (the weights pass through the cache once per step). ``bench.yardsticks.fast_v1`` keeps the
previous kernel for the benchmark.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from model.data import SignalSet
from model.kernels import (
    JIT,
    flatten,
    from_rows,
    gate_product,
    hidden_from_size,
    predict_rows,
    to_rows,
    unflatten,
)
from model.l1.engine import ADAM_BETAS, ADAM_EPS, CLIP_EPS, AdamState, EpochSteps
from model.params import Weights
from model.vecmath import sigmoid, tanh

# Within a block the one-hot inputs of the other frequencies get exactly zero gradient, so
# their Adam moments decay geometrically into subnormal floats, which cost x86 ~100 cycles per
# operation: 90 us per step instead of 17. Moments below TINY are flushed to zero instead
# (what flush-to-zero hardware mode would do, at a threshold far below anything that moves a
# weight: the update m / (sqrt(v) + 1e-8) of a moment under 1e-30 is under 1e-22).
TINY = np.float32(1e-30)


@numba.njit(inline="always", **JIT)
def _adam_weight(p, m, v, g, b1c, b2, b2c, step_size, inv_bc2, eps):
    """Adam on one weight with gradient g (bias-corrected through step_size and inv_bc2):
    returns its new value and moments. Inlined into both loops below, which vectorise it."""
    mi = m + (g - m) * b1c
    vi = v * b2 + b2c * g * g
    mi = mi if abs(mi) >= TINY else np.float32(0.0)
    vi = vi if vi >= TINY else np.float32(0.0)
    return p - step_size * (mi / (np.sqrt(vi) * inv_bc2 + eps)), mi, vi


@numba.njit(**JIT)
def _adam_segment(p, m, v, grad_a, grad_b, scale, b1c, b2, b2c, step_size, inv_bc2, eps):
    """Adam on a weight whose gradient is the outer product grad_a[k] * grad_b[j] (times the
    clip scale): the gradient is formed on the fly instead of stored."""
    n_a = grad_a.size
    n_b = grad_b.size
    for k in range(n_a):
        ga = grad_a[k] * scale
        base = k * n_b
        for j in range(n_b):
            i = base + j
            p[i], m[i], v[i] = _adam_weight(p[i], m[i], v[i], ga * grad_b[j], b1c, b2, b2c,
                                            step_size, inv_bc2, eps)  # fmt: skip


@numba.njit(**JIT)
def _adam_rows(p, m, v, z, dgate, a, z_next, gates_next):
    """Adam on the gate weights (row j's gradient is z[j] * dgate, times the clip scale), and
    in the same pass the next step's gates ``z_next @ W`` from the updated rows: the weights
    are streamed through the cache once per step instead of twice."""
    scale, b1c, b2, b2c, step_size, inv_bc2, eps = a
    g4 = dgate.size
    for j in range(z.size):
        ga = z[j] * scale
        zn = z_next[j]
        base = j * g4
        first = j == 0
        for k in range(g4):
            i = base + k
            pi, m[i], v[i] = _adam_weight(p[i], m[i], v[i], ga * dgate[k], b1c, b2, b2c,
                                          step_size, inv_bc2, eps)  # fmt: skip
            p[i] = pi
            gates_next[k] = zn * pi if first else gates_next[k] + zn * pi


@numba.njit(**JIT)
def _activate(w_out, b_out, c_prev, c, gates, tc, head):
    """One step from the gates' pre-activations and c_prev: activated gates, c, tanh(c), and
    head = [h_new, 1]. Returns the output."""
    hid = c.size
    for j in range(hid):
        ig = sigmoid(gates[j])
        fg = sigmoid(gates[hid + j])
        gg = tanh(gates[2 * hid + j])
        og = sigmoid(gates[3 * hid + j])
        gates[j], gates[hid + j], gates[2 * hid + j], gates[3 * hid + j] = ig, fg, gg, og
        cj = fg * c_prev[j] + ig * gg
        c[j] = cj
        tcj = tanh(cj)
        tc[j] = tcj
        head[j] = og * tcj
    # A sum in a loop without stores: its rounding must not depend on where the buffers lie
    # (see model.kernels.advance).
    y = b_out
    for j in range(hid):
        y += w_out[j] * head[j]
    return y


@numba.njit(**JIT)
def _backward(dy, w_out, gates, c_prev, tc, dgate):
    """The gate gradients of one step (h_prev and c_prev are detached constants); returns
    their squared norm."""
    one = np.float32(1.0)
    hid = c_prev.size
    for j in range(hid):
        ig = gates[j]
        fg = gates[hid + j]
        gg = gates[2 * hid + j]
        og = gates[3 * hid + j]
        t = tc[j]
        dh = dy * w_out[j]
        dc = dh * og * (one - t * t)
        dgate[j] = dc * gg * ig * (one - ig)
        dgate[hid + j] = dc * c_prev[j] * fg * (one - fg)
        dgate[2 * hid + j] = dc * ig * (one - gg * gg)
        dgate[3 * hid + j] = dh * t * og * (one - og)
    sq = 0.0
    for k in range(dgate.size):
        sq += dgate[k] * dgate[k]
    return sq


@numba.njit(**JIT)
def _train_epoch(theta, m, v, step0, inputs, targets, lr, clip, b1, b2, eps, clip_eps):
    """All blocks of one epoch, weights in the kernels' layout (``model.kernels.to_rows``).
    Returns (steps, loss_sum, norm_sum, norm_max, non_finite)."""
    n_blocks, n_samples, n_in = inputs.shape
    hid = hidden_from_size(theta.size, n_in)
    g4 = 4 * hid
    rows = n_in + hid + 2
    n_w = rows * g4
    w = theta[:n_w].reshape((rows, g4))
    w_out = theta[n_w : n_w + hid]
    b1c = np.float32(1.0 - b1)
    b2f = np.float32(b2)
    b2c = np.float32(1.0 - b2)
    epsf = np.float32(eps)
    # [x, h_prev, 1, 1]: the gates are z @ W and row j of W's gradient is z[j] * dgate.
    z = np.ones(rows, np.float32)
    z_next = np.ones(rows, np.float32)
    head = np.ones(hid + 1, np.float32)  # [h_new, 1]: the head's weight and bias factor
    c = np.zeros(hid, np.float32)
    c_prev = np.zeros(hid, np.float32)
    tc = np.zeros(hid, np.float32)
    gates = np.zeros(g4, np.float32)
    gates_next = np.zeros(g4, np.float32)
    dgate = np.zeros(g4, np.float32)
    dy_arr = np.zeros(1, np.float32)
    steps = 0
    loss_sum = 0.0
    norm_sum = 0.0
    norm_max = 0.0
    z[n_in : n_in + hid] = 0.0
    z[:n_in] = inputs[0, 0]
    gate_product(w, z.reshape((1, rows)), gates.reshape((1, g4)))
    for blk in range(n_blocks):
        c[:] = 0.0
        for t in range(n_samples):
            c, c_prev = c_prev, c  # the state carried in is this step's constant
            y = _activate(w_out, theta[n_w + hid], c_prev, c, gates, tc, head)
            diff = y - targets[blk, t]
            loss = diff * diff
            dy = np.float32(2.0) * diff
            sq_dg = _backward(dy, w_out, gates, c_prev, tc, dgate)
            sq_z = 0.0
            for j in range(rows):
                sq_z += z[j] * z[j]
            sq_head = 0.0
            for j in range(hid + 1):
                sq_head += head[j] * head[j]
            # ||grad||^2 over W_ih, W_hh, b_ih, b_hh (outer products of dgate and z) and the
            # head (dy times [h_new, 1]).
            sq = sq_dg * sq_z + dy * dy * sq_head
            norm = np.sqrt(sq)
            if not (np.isfinite(loss) and np.isfinite(norm)):
                return steps, loss_sum, norm_sum, norm_max, True
            scale = np.float32(min(clip / (np.float32(norm) + clip_eps), 1.0))
            step = step0 + steps + 1
            step_size = np.float32(lr / (1.0 - b1**step))
            inv_bc2 = np.float32(1.0 / math.sqrt(1.0 - b2**step))
            a = (scale, b1c, b2f, b2c, step_size, inv_bc2, epsf)
            # The next step's input: the next sample of this block with the new h, or the
            # first of the next block from a zero state (after the last step: unused).
            if t + 1 < n_samples:
                z_next[:n_in] = inputs[blk, t + 1]
                z_next[n_in : n_in + hid] = head[:hid]
            else:
                z_next[:n_in] = inputs[min(blk + 1, n_blocks - 1), 0]
                z_next[n_in : n_in + hid] = 0.0
            _adam_rows(theta[:n_w], m[:n_w], v[:n_w], z, dgate, a, z_next, gates_next)
            dy_arr[0] = dy
            end = n_w + hid + 1
            _adam_segment(theta[n_w:end], m[n_w:end], v[n_w:end], dy_arr, head, *a)
            z, z_next = z_next, z
            gates, gates_next = gates_next, gates
            steps += 1
            loss_sum += loss
            norm_sum += norm
            norm_max = max(norm_max, norm)
    return steps, loss_sum, norm_sum, norm_max, False


class FastEngine:
    """The reference's computation, compiled: same weights, same Adam state, ~50x the speed.
    Weights and moments are held in the kernels' layout (``model.kernels.to_rows``) and
    converted only where they leave the engine."""

    name = "fast"

    def __init__(self, weights: Weights, input_size: int, hidden_size: int) -> None:
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.theta = self._in(weights)
        self.m = np.zeros_like(self.theta)
        self.v = np.zeros_like(self.theta)
        self.step = 0

    def _in(self, weights: Weights) -> np.ndarray:
        flat = flatten(weights, self.input_size, self.hidden_size)
        return to_rows(flat, self.input_size, self.hidden_size)

    def _out(self, rows: np.ndarray) -> Weights:
        flat = from_rows(rows, self.input_size, self.hidden_size)
        return unflatten(flat, self.input_size, self.hidden_size)

    def train_epoch(self, data: SignalSet, lr: float, clip: float) -> EpochSteps:
        steps, loss_sum, norm_sum, norm_max, bad = _train_epoch(
            self.theta, self.m, self.v, self.step,
            np.ascontiguousarray(data.inputs, dtype=np.float32),
            np.ascontiguousarray(data.targets, dtype=np.float32),
            float(lr), np.float32(clip), ADAM_BETAS[0], ADAM_BETAS[1], ADAM_EPS,
            np.float32(CLIP_EPS),
        )  # fmt: skip
        self.step += int(steps)
        return EpochSteps(int(steps), float(loss_sum), float(norm_sum), float(norm_max), bool(bad))

    def predict(self, data: SignalSet) -> np.ndarray:
        return predict_rows(self.theta, np.ascontiguousarray(data.inputs, dtype=np.float32))

    def weights(self) -> Weights:
        return self._out(self.theta)

    def adam_state(self) -> AdamState:
        return AdamState(step=self.step, exp_avg=self._out(self.m), exp_avg_sq=self._out(self.v))

    def load(self, weights: Weights, adam: AdamState) -> None:
        self.theta = self._in(weights)
        self.m = self._in(adam.exp_avg)
        self.v = self._in(adam.exp_avg_sq)
        self.step = adam.step
