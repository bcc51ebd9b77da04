"""The plan's model: one LSTM layer and a linear head, with the state passed explicitly."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from model.params import HIDDEN_SIZE, NUM_LAYERS, Weights, init_weights

State = tuple[torch.Tensor, torch.Tensor]


class SineLSTM(nn.Module):
    """LSTM(input -> hidden, 1 layer) + Linear(hidden -> 1); state in, state out."""

    def __init__(self, input_size: int = 5, hidden_size: int = HIDDEN_SIZE) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=NUM_LAYERS, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def init_state(self, batch: int = 1) -> State:
        # new_zeros: the state follows the weights' device and dtype.
        w = self.head.weight
        shape = (NUM_LAYERS, batch, self.hidden_size)
        return w.new_zeros(shape), w.new_zeros(shape)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """x: (batch, steps, input) -> output (batch, steps), new state."""
        out, state = self.lstm(x, state)
        return self.head(out).squeeze(-1), state


def detach_state(state: State) -> State:
    """Cut the graph at the carried state.

    Without this, backpropagation at step t would run through every earlier step of the block
    (and the memory of the graph would grow with it); L=1 training means one step only.
    """
    return state[0].detach(), state[1].detach()


def build_model(input_size: int, hidden_size: int, seed: int) -> SineLSTM:
    """A model with PyTorch's default initialisation, drawn from a local generator
    (``model.params.init_weights``), so the compiled engine starts from the same weights."""
    model = SineLSTM(input_size, hidden_size)
    weights = init_weights(input_size, hidden_size, seed)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    return model


def module_from_weights(weights: Weights, input_size: int, hidden_size: int) -> SineLSTM:
    model = SineLSTM(input_size, hidden_size)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    return model


def weights_of(model: SineLSTM) -> Weights:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
