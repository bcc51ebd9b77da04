"""What an L=1 engine does: the torch-free vocabulary both engines share (Adam state, the
statistics of one epoch's steps) and the ``Engine`` protocol.

An engine owns the weights and Adam's state of one model and runs one epoch of the plan's L=1
training: batch 1, sequence length 1, the (h, c) state carried from sample to sample within a
block and detached after every step, reset to zeros at each block start, MSE loss, gradient-norm
clip, then Adam. ``model.l1.reference`` defines it in eager PyTorch; ``model.l1.fast`` compiles
it and must agree (tests/model/test_fast_engine.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from model.data import SignalSet
from model.params import Weights

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
#: clip_grad_norm_ adds this to the norm before dividing, as torch does.
CLIP_EPS = 1e-6


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
