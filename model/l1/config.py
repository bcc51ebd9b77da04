"""The L=1 method's configuration: the plan's restart recommendation as defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from model.params import HIDDEN_SIZE

#: The plan's fixed settings; recorded with every study, not searched.
BATCH_SIZE = 1
SEQUENCE_LENGTH = 1
ENGINES = ("fast", "reference")


@dataclass(frozen=True)
class TrainConfig:
    """One L=1 training run; the defaults are the plan's restart recommendation."""

    METHOD: ClassVar[str] = "l1"

    lr: float = 1e-4
    """Adam's initial learning rate."""
    epochs: int = 30
    """Most epochs to train (one epoch = one pass over every block of the training set)."""
    clip: float = 1.0
    """Gradient-norm clip (global L2 norm over all parameters)."""
    plateau_factor: float = 0.5
    """ReduceLROnPlateau factor, applied on the honest validation MSE."""
    plateau_patience: int = 5
    """ReduceLROnPlateau patience in epochs."""
    early_stopping_patience: int = 10
    """Stop after this many epochs without a new best honest validation MSE."""
    hidden_size: int = HIDDEN_SIZE
    """LSTM hidden units (one layer)."""
    seed: int = 0
    """Seed of the weight initialisation."""
    engine: str = "fast"
    """'fast' (compiled, the default) or 'reference' (eager PyTorch, the definition)."""

    def __post_init__(self) -> None:
        if not (0.0 < self.lr < 1.0):
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        for name in ("epochs", "hidden_size", "early_stopping_patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.plateau_patience < 0:
            raise ValueError(f"plateau_patience must be >= 0, got {self.plateau_patience}")
        if not (0.0 < self.plateau_factor < 1.0):
            raise ValueError(f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        if self.clip <= 0:
            raise ValueError(f"clip must be positive, got {self.clip}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
