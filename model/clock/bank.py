"""An oscillator-bank initialisation of the LSTM, an option of the clock method.

PyTorch's default initialisation gives a clock nothing to start from: the grow stage has to
find an oscillation by itself, and on most seeds it saturates first (bench/grow_stall.md).
This initialisation makes the LSTM, in its small-signal regime, a bank of undamped rotations
at log-spaced frequencies of a fixed band, the same whatever the task's frequencies are:

- hidden units come in pairs; pair j's cell state turns by w_j = 2 pi f_j / sample_rate a step:
  with the forget gate held open (bias FORGET_OPEN) and the input and output gates at 1/2,
  c_t ~ c_{t-1} + (1/4) U_g c_{t-1} + (1/2) W_g x_t, so U_g = 4 (R(w_j) - I) on the pair;
- the one-hot C drives every pair with small random weights, so each block starts a little of
  every oscillation (a constant drive d makes a pair circle its fixed point with radius
  ~ |d| / w_j from the zero state);
- the noise S reaches nothing (its input weights start at zero) and the gates see no state.

Training still has to choose which oscillations each block starts (the drive), how to read
them out (the head), and tune each chosen pair to its block's exact frequency: the band is
not the task's frequencies, and a frequency 2% off drifts a quarter period over 10 s.
"""

from __future__ import annotations

import math

import numpy as np

from model.params import Weights

#: The band of the bank's frequencies, in Hz (log-spaced over the hidden units' pairs).
BANK_HZ = (0.5, 16.0)
#: Forget-gate bias: sigmoid(14) = 1 - 8e-7, a decay of 0.8% over 10,000 steps.
FORGET_OPEN = 14.0
#: Standard deviation of the drive weights from C to the cell candidate.
DRIVE_STD = 1e-3


def bank_frequencies(pairs: int, band: tuple[float, float] = BANK_HZ) -> np.ndarray:
    lo, hi = band
    return lo * (hi / lo) ** (np.arange(pairs) / max(1, pairs - 1))


def oscillator_bank(weights: Weights, sample_rate: float, seed: int) -> Weights:
    """``weights`` (an LSTM + head state dict of numpy arrays) with the LSTM part replaced by
    the bank; the head is kept. Input column 0 is S, the rest are the one-hot C."""
    w_ih = np.asarray(weights["lstm.weight_ih_l0"])
    four_h, n_in = w_ih.shape
    h = four_h // 4
    g = slice(2 * h, 3 * h)  # gate order in nn.LSTM: input, forget, cell, output
    rng = np.random.default_rng([seed, 0xBA4C])
    new_ih = np.zeros_like(w_ih)
    new_ih[g, 1:] = rng.normal(0.0, DRIVE_STD, size=(h, n_in - 1))
    new_hh = np.zeros((four_h, h), dtype=w_ih.dtype)
    for j, f in enumerate(bank_frequencies(h // 2)):
        w = 2.0 * math.pi * f / sample_rate
        turn = np.array([[math.cos(w) - 1.0, -math.sin(w)], [math.sin(w), math.cos(w) - 1.0]])
        a = 2 * h + 2 * j
        new_hh[a : a + 2, 2 * j : 2 * j + 2] = 4.0 * turn  # (R - I) / (1/2 * 1/2)
    bias = np.zeros(four_h, dtype=w_ih.dtype)
    bias[h : 2 * h] = FORGET_OPEN
    out = dict(weights)
    out["lstm.weight_ih_l0"] = new_ih
    out["lstm.weight_hh_l0"] = new_hh
    out["lstm.bias_ih_l0"] = bias
    out["lstm.bias_hh_l0"] = np.zeros(four_h, dtype=w_ih.dtype)
    return out
