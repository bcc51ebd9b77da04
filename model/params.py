"""The torch-free vocabulary of every method: parameter layout, initial weights, honest scores.

Kept apart from torch on purpose: a sweep worker on the compiled engine never imports torch,
which saves ~200 MB of resident memory per worker process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from model.data import SignalSet

#: The plan's model: one LSTM layer of 64 units.
HIDDEN_SIZE = 64
NUM_LAYERS = 1
#: Parameter names and order, as in SineLSTM.state_dict().
PARAM_NAMES = (
    "lstm.weight_ih_l0",
    "lstm.weight_hh_l0",
    "lstm.bias_ih_l0",
    "lstm.bias_hh_l0",
    "head.weight",
    "head.bias",
)

Weights = dict[str, np.ndarray]


def param_shapes(input_size: int, hidden: int) -> dict[str, tuple[int, ...]]:
    g = 4 * hidden
    shapes = [(g, input_size), (g, hidden), (g,), (g,), (1, hidden), (1,)]
    return dict(zip(PARAM_NAMES, shapes, strict=True))


def init_weights(input_size: int, hidden: int, seed: int) -> Weights:
    """PyTorch's default initialisation for nn.LSTM and nn.Linear (uniform in +-1/sqrt(hidden)
    for every tensor here), drawn from a local generator: no global seeding, no torch needed."""
    rng = np.random.default_rng(seed)
    k = 1.0 / math.sqrt(hidden)
    return {
        name: rng.uniform(-k, k, size=shape).astype(np.float32)
        for name, shape in param_shapes(input_size, hidden).items()
    }


@dataclass(frozen=True)
class Evaluation:
    """Honest MSE of one model on one set: overall and per frequency block."""

    mse: float
    per_freq: tuple[float, ...]


def score(predictions: np.ndarray, data: SignalSet) -> Evaluation:
    """MSE of predictions shaped like ``data.targets`` (float64 accumulation)."""
    err = (predictions.astype(np.float64) - data.targets.astype(np.float64)) ** 2
    per_freq = err.mean(axis=1)
    return Evaluation(mse=float(err.mean()), per_freq=tuple(float(v) for v in per_freq))
