"""Honest evaluation: frozen weights over a whole set, state reset at each block start."""

from __future__ import annotations

import numpy as np
import torch

from model.data import SignalSet
from model.lstm import SineLSTM
from model.params import Evaluation, score


@torch.no_grad()
def predict(model: SineLSTM, data: SignalSet) -> np.ndarray:
    """Each block as one sequence from a zero state: the same computation as stepping it one
    sample at a time with the state carried (``predict_stepwise``), only without the
    per-step overhead. The blocks run side by side as a batch."""
    model.eval()
    x = torch.from_numpy(data.inputs)
    out, _ = model(x, model.init_state(batch=x.shape[0]))
    return out.numpy()


@torch.no_grad()
def predict_stepwise(model: SineLSTM, data: SignalSet) -> np.ndarray:
    """The literal L=1 definition, one sample per call; slow, used to check ``predict``."""
    model.eval()
    n_freq, samples, _ = data.inputs.shape
    out = np.empty((n_freq, samples), dtype=np.float32)
    for b in range(n_freq):
        state = model.init_state()
        for t in range(samples):
            x = torch.from_numpy(data.inputs[b, t]).view(1, 1, -1)
            y, state = model(x, state)
            out[b, t] = y.item()
    return out


def evaluate(model: SineLSTM, data: SignalSet) -> Evaluation:
    return score(predict(model, data), data)
