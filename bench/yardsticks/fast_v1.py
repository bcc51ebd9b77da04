"""The compiled engine as it was before the batched kernels (commit c48fafc), frozen.

Kept only as a yardstick: ``bench.speed`` times today's engine against it in one process, and
``bench.ulp_sensitivity`` compares today's numbers with how far its own move when one weight
moves by one ulp. No test imports it, and nothing in a sweep does. Its kernels use the C
library's exp and tanh, the ``PARAM_NAMES`` layout, one matrix-vector product per step, and
evaluate block after block (``bench.yardsticks.kernels_v1.predict_flat_sequential``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bench.yardsticks.kernels_v1 import forward_step, predict_flat_sequential
from model.data import SignalSet
from model.kernels import JIT, flatten, hidden_from_size, unflatten
from model.l1.engine import ADAM_BETAS, ADAM_EPS, CLIP_EPS, AdamState, EpochSteps
from model.params import Weights

# Within a block the one-hot inputs of the other frequencies get exactly zero gradient, so
# their Adam moments decay geometrically into subnormal floats, which cost x86 ~100 cycles per
# operation: 90 us per step instead of 17. Moments below TINY are flushed to zero instead
# (what flush-to-zero hardware mode would do, at a threshold far below anything that moves a
# weight: the update m / (sqrt(v) + 1e-8) of a moment under 1e-30 is under 1e-22).
TINY = np.float32(1e-30)


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
            g = ga * grad_b[j]
            i = base + j
            mi = m[i] + (g - m[i]) * b1c
            vi = v[i] * b2 + b2c * g * g
            mi = mi if abs(mi) >= TINY else np.float32(0.0)
            vi = vi if vi >= TINY else np.float32(0.0)
            m[i] = mi
            v[i] = vi
            p[i] = p[i] - step_size * (mi / (np.sqrt(vi) * inv_bc2 + eps))


@numba.njit(**JIT)
def _adam(theta, m, v, lo, hi, grad_a, grad_b, a):
    _adam_segment(
        theta[lo:hi], m[lo:hi], v[lo:hi], grad_a, grad_b, a[0], a[1], a[2], a[3], a[4], a[5], a[6]
    )


@numba.njit(**JIT)
def _train_epoch(theta, m, v, step0, inputs, targets, lr, clip, b1, b2, eps, clip_eps):
    """All blocks of one epoch. Returns (steps, loss_sum, norm_sum, norm_max, non_finite)."""
    n_blocks, n_samples, n_in = inputs.shape
    hid = hidden_from_size(theta.size, n_in)
    g4 = 4 * hid
    one = np.float32(1.0)
    b1c = np.float32(1.0 - b1)
    b2f = np.float32(b2)
    b2c = np.float32(1.0 - b2)
    epsf = np.float32(eps)
    h = np.zeros(hid, np.float32)
    c = np.zeros(hid, np.float32)
    h_prev = np.zeros(hid, np.float32)
    c_prev = np.zeros(hid, np.float32)
    gates = np.zeros(g4, np.float32)
    dgate = np.zeros(g4, np.float32)
    ones1 = np.ones(1, np.float32)
    dy_arr = np.zeros(1, np.float32)
    h_one = np.ones(hid + 1, np.float32)  # [h_new, 1]: the head's weight and bias
    off_whh = g4 * n_in
    off_b = off_whh + g4 * hid
    off_out = off_b + 2 * g4
    steps = 0
    loss_sum = 0.0
    norm_sum = 0.0
    norm_max = 0.0
    for blk in range(n_blocks):
        h[:] = 0.0
        c[:] = 0.0
        for t in range(n_samples):
            x = inputs[blk, t]
            h_prev[:] = h
            c_prev[:] = c
            y = forward_step(theta, n_in, hid, x, h, c, gates)
            diff = y - targets[blk, t]
            loss = diff * diff
            dy = np.float32(2.0) * diff
            # Backward through one step: h_prev and c_prev are detached constants.
            sq_dg = 0.0
            for j in range(hid):
                ig = gates[j]
                fg = gates[hid + j]
                gg = gates[2 * hid + j]
                og = gates[3 * hid + j]
                tc = np.tanh(c[j])
                dh = dy * theta[off_out + j]
                dc = dh * og * (one - tc * tc)
                dgate[j] = dc * gg * ig * (one - ig)
                dgate[hid + j] = dc * c_prev[j] * fg * (one - fg)
                dgate[2 * hid + j] = dc * ig * (one - gg * gg)
                dgate[3 * hid + j] = dh * tc * og * (one - og)
            for k in range(g4):
                sq_dg += dgate[k] * dgate[k]
            sq_x = 0.0
            for j in range(n_in):
                sq_x += x[j] * x[j]
            sq_h = 0.0
            sq_hn = 0.0
            for j in range(hid):
                sq_h += h_prev[j] * h_prev[j]
                sq_hn += h[j] * h[j]
            # ||grad||^2 over W_ih, W_hh, b_ih, b_hh, W_out, b_out.
            sq = sq_dg * (sq_x + sq_h + 2.0) + dy * dy * (sq_hn + 1.0)
            norm = np.sqrt(sq)
            if not (np.isfinite(loss) and np.isfinite(norm)):
                return steps, loss_sum, norm_sum, norm_max, True
            scale = np.float32(min(clip / (np.float32(norm) + clip_eps), 1.0))
            step = step0 + steps + 1
            bc1 = 1.0 - b1**step
            step_size = np.float32(lr / bc1)
            inv_bc2 = np.float32(1.0 / math.sqrt(1.0 - b2**step))
            a = (scale, b1c, b2f, b2c, step_size, inv_bc2, epsf)
            e = off_b + 2 * g4
            _adam(theta, m, v, 0, off_whh, dgate, x, a)
            _adam(theta, m, v, off_whh, off_b, dgate, h_prev, a)
            _adam(theta, m, v, off_b, off_b + g4, dgate, ones1, a)
            _adam(theta, m, v, off_b + g4, e, dgate, ones1, a)
            dy_arr[0] = dy
            h_one[:hid] = h
            _adam(theta, m, v, off_out, theta.size, dy_arr, h_one, a)
            steps += 1
            loss_sum += loss
            norm_sum += norm
            norm_max = max(norm_max, norm)
    return steps, loss_sum, norm_sum, norm_max, False


class FastEngineV1:
    """``model.l1.fast.FastEngine`` as of commit c48fafc."""

    name = "fast-v1"

    def __init__(self, weights: Weights, input_size: int, hidden_size: int) -> None:
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.theta = flatten(weights, input_size, hidden_size)
        self.m = np.zeros_like(self.theta)
        self.v = np.zeros_like(self.theta)
        self.step = 0

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
        inputs = np.ascontiguousarray(data.inputs, dtype=np.float32)
        return predict_flat_sequential(self.theta, inputs)

    def weights(self) -> Weights:
        return unflatten(self.theta, self.input_size, self.hidden_size)

    def adam_state(self) -> AdamState:
        return AdamState(
            step=self.step,
            exp_avg=unflatten(self.m, self.input_size, self.hidden_size),
            exp_avg_sq=unflatten(self.v, self.input_size, self.hidden_size),
        )

    def load(self, weights: Weights, adam: AdamState) -> None:
        self.theta = flatten(weights, self.input_size, self.hidden_size)
        self.m = flatten(adam.exp_avg, self.input_size, self.hidden_size)
        self.v = flatten(adam.exp_avg_sq, self.input_size, self.hidden_size)
        self.step = adam.step
