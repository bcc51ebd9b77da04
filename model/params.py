"""The torch-free vocabulary every engine shares: parameter layout, Adam state, epoch stats.

Kept apart from torch on purpose: a sweep worker on the compiled engine never imports torch,
which saves ~200 MB of resident memory per worker process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from model.data import SignalSet

#: The plan's model: one LSTM layer of 64 units.
HIDDEN_SIZE = 64
NUM_LAYERS = 1
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
#: clip_grad_norm_ adds this to the norm before dividing, as torch does.
CLIP_EPS = 1e-6
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


@dataclass
class AdamState:
    """Adam's moments per parameter and its step count, engine-neutral (numpy)."""

    step: int
    exp_avg: Weights
    exp_avg_sq: Weights

    @classmethod
    def zeros_like(cls, weights: Weights) -> AdamState:
        return cls(
            step=0,
            exp_avg={k: np.zeros_like(v) for k, v in weights.items()},
            exp_avg_sq={k: np.zeros_like(v) for k, v in weights.items()},
        )


@dataclass(frozen=True)
class EpochSteps:
    """What the optimiser steps of one epoch produced."""

    steps: int
    loss_sum: float
    grad_norm_sum: float
    grad_norm_max: float
    non_finite: bool
    """A loss or gradient was NaN/Inf; that step was not applied and the epoch stopped there."""

    @property
    def online_loss(self) -> float:
        return self.loss_sum / self.steps if self.steps else math.nan

    @property
    def grad_norm_mean(self) -> float:
        return self.grad_norm_sum / self.steps if self.steps else math.nan


class Engine(Protocol):
    """One model's weights and Adam state, and one epoch of the plan's L=1 training."""

    name: str

    def train_epoch(self, data: SignalSet, lr: float, clip: float) -> EpochSteps: ...

    def predict(self, data: SignalSet) -> np.ndarray: ...

    def weights(self) -> Weights: ...

    def adam_state(self) -> AdamState: ...

    def load(self, weights: Weights, adam: AdamState) -> None: ...


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
