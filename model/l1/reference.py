"""What a trainer engine does, and the reference engine that defines it.

An engine owns the weights and Adam's state of one model and runs one epoch of the plan's L=1
training: batch 1, sequence length 1, the (h, c) state carried from sample to sample within a
block and detached after every step, reset to zeros at each block start, MSE loss, gradient-norm
clip, then Adam. The reference engine does this with ``nn.LSTM``, autograd,
``clip_grad_norm_`` and ``torch.optim.Adam``: it is the definition of what a trial computes.
The compiled engine in ``model.fast`` must agree with it (see tests/model/test_fast_engine.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from model.data import SignalSet
from model.evaluate import predict
from model.l1.engine import ADAM_BETAS, ADAM_EPS, AdamState, EpochSteps
from model.lstm import detach_state, module_from_weights, weights_of
from model.params import Weights


class ReferenceEngine:
    """nn.LSTM + autograd + clip_grad_norm_ + torch.optim.Adam, one sample per step."""

    name = "reference"

    def __init__(self, weights: Weights, input_size: int, hidden_size: int) -> None:
        self.model = module_from_weights(weights, input_size, hidden_size)
        # Single-tensor Adam: the plain textbook update, which the compiled engine mirrors.
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=1e-3, betas=ADAM_BETAS, eps=ADAM_EPS, foreach=False
        )
        self._params = dict(self.model.named_parameters())

    def train_epoch(self, data: SignalSet, lr: float, clip: float) -> EpochSteps:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        params = list(self.model.parameters())
        steps, loss_sum, norm_sum, norm_max = 0, 0.0, 0.0, 0.0
        inputs = torch.from_numpy(data.inputs)
        targets = torch.from_numpy(data.targets)
        for b in range(inputs.shape[0]):
            state = self.model.init_state()
            for t in range(inputs.shape[1]):
                out, state = self.model(inputs[b, t].view(1, 1, -1), state)
                loss = (out.view(()) - targets[b, t]) ** 2
                self.optimizer.zero_grad(set_to_none=False)
                loss.backward()
                norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
                value = loss.item()
                if not (math.isfinite(value) and math.isfinite(norm)):
                    return EpochSteps(steps, loss_sum, norm_sum, norm_max, non_finite=True)
                self.optimizer.step()
                state = detach_state(state)
                steps += 1
                loss_sum += value
                norm_sum += norm
                norm_max = max(norm_max, norm)
        return EpochSteps(steps, loss_sum, norm_sum, norm_max, non_finite=False)

    def predict(self, data: SignalSet) -> np.ndarray:
        return predict(self.model, data)

    def weights(self) -> Weights:
        return weights_of(self.model)

    def adam_state(self) -> AdamState:
        adam = AdamState.zeros_like(self.weights())
        for name, p in self._params.items():
            st = self.optimizer.state.get(p)
            if st:
                adam.step = int(st["step"])
                adam.exp_avg[name] = st["exp_avg"].numpy().copy()
                adam.exp_avg_sq[name] = st["exp_avg_sq"].numpy().copy()
        return adam

    def load(self, weights: Weights, adam: AdamState) -> None:
        with torch.no_grad():
            for name, p in self._params.items():
                p.copy_(torch.from_numpy(np.array(weights[name])))
        self.optimizer.state.clear()
        if adam.step > 0:
            for name, p in self._params.items():
                self.optimizer.state[p] = {
                    "step": torch.tensor(float(adam.step)),
                    "exp_avg": torch.from_numpy(np.array(adam.exp_avg[name])),
                    "exp_avg_sq": torch.from_numpy(np.array(adam.exp_avg_sq[name])),
                }
