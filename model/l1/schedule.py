"""Learning-rate plateau schedule and early stopping, as small pure state machines.

Both trainers (the torch reference and the compiled one) use these, so the schedule is defined
once. ``PlateauSchedule`` follows ``torch.optim.lr_scheduler.ReduceLROnPlateau`` in mode
"min" with its default relative threshold; a test checks the two agree step for step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

#: torch's ReduceLROnPlateau defaults, kept so that both schedules agree.
PLATEAU_THRESHOLD = 1e-4
PLATEAU_EPS = 1e-8


@dataclass(frozen=True)
class PlateauSchedule:
    """ReduceLROnPlateau: halve the lr after ``patience`` epochs without improvement."""

    lr: float
    factor: float = 0.5
    patience: int = 5
    best: float = math.inf
    bad_epochs: int = 0

    def step(self, metric: float) -> PlateauSchedule:
        if metric < self.best * (1.0 - PLATEAU_THRESHOLD):
            best, bad = metric, 0
        else:
            best, bad = self.best, self.bad_epochs + 1
        lr = self.lr
        if bad > self.patience:
            new_lr = lr * self.factor
            if lr - new_lr > PLATEAU_EPS:
                lr = new_lr
            bad = 0
        return replace(self, lr=lr, best=best, bad_epochs=bad)


@dataclass(frozen=True)
class EarlyStopping:
    """Stop after ``patience`` epochs in a row without a new best validation MSE."""

    patience: int = 10
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    def step(self, epoch: int, metric: float) -> EarlyStopping:
        if metric < self.best:
            return replace(self, best=metric, best_epoch=epoch, bad_epochs=0)
        return replace(self, bad_epochs=self.bad_epochs + 1)

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    @property
    def improved(self) -> bool:
        """True right after the step that set a new best."""
        return self.bad_epochs == 0 and self.best_epoch > 0
