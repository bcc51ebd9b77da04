"""The two training methods behind one interface, so the sweep drives either the same way.

- ``l1`` (``model.training``): the plan's method: batch 1, sequence length 1, the state carried
  and detached after every step. The default, and what the plan asked for.
- ``clock`` (``model.clock``): fresh noise and full backpropagation over a growing prefix of each
  block, then a fine-tune at full length. The model still reads one sample per step with its
  state carried and is evaluated exactly as for L=1; it only trains differently.

Both produce ``SineLSTM`` weights, report one ``EpochReport``-shaped record per epoch (an epoch
of the clock method is a fixed number of updates) and checkpoint after every epoch.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Protocol

from model.checkpoint import CheckpointError, atomic_save, load_state, save_state
from model.data import DataConfig, SignalSet
from model.params import Evaluation, Weights
from model.training import TrainConfig, Training, method_of  # noqa: F401  (re-exported)

METHODS = ("l1", "clock")


class Run(Protocol):
    """What the sweep needs of a training run of either method."""

    state: Any  # TrainState or ClockState: .config .epoch .history .weights .best_weights

    @property
    def finished(self) -> bool: ...

    def run_epoch(self) -> Any: ...

    def evaluate(self, data: SignalSet, weights: Weights | None = None) -> Evaluation: ...


def start(config: object, train: SignalSet, val: SignalSet, data: DataConfig) -> Run:
    if isinstance(config, TrainConfig):
        return Training.start(config, train, val)
    from model.clock import ClockTraining

    return ClockTraining.start(config, val, data, train)


def resume(state: object, train: SignalSet, val: SignalSet, data: DataConfig) -> Run:
    if isinstance(state.config, TrainConfig):
        return Training(train, val, state)
    from model.clock import ClockTraining

    return ClockTraining(val, data, state, train)


def best_epoch(state: object) -> int:
    """The epoch whose weights are ``state.best_weights`` (0: none yet)."""
    early = getattr(state, "early", None)
    return early.best_epoch if early is not None else state.best_epoch


def save(state: object, path: Path) -> None:
    if isinstance(state.config, TrainConfig):
        save_state(state, path)
        return
    from model.clock import state_to_dict

    atomic_save(state_to_dict(state), path)


def load(path: Path, method: str) -> object:
    """A checkpoint of ``method``; any failure is a ``CheckpointError``."""
    if method == "l1":
        return load_state(path)
    import torch

    from model.clock import state_from_dict

    try:
        return state_from_dict(torch.load(io.BytesIO(Path(path).read_bytes()), weights_only=True))
    except Exception as exc:  # missing, truncated, another format: all mean "not usable"
        raise CheckpointError(f"{path}: {type(exc).__name__}: {exc}") from exc
