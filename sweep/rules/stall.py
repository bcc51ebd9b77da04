"""The clock method's grow stage (not in the plan): whether it has stalled, and the verdict.

One rule, written once: the pruner applies it to a trial's recorded curves
(``sweep.pruner.grow_epochs``), and the clock trainer receives it as a function
(``model.method.Settings.stall_check``, built by ``sweep.pruner.stall_check``) to start a
stalled attempt over from other initial weights. So the trainer restarts exactly where the
sweep would stop the attempt, and the pruner never stops an attempt that has restarts left (the
epoch that ends an attempt is marked ``restarted``, and the pruner leaves it alone).

Pure functions over plain numbers; nothing of ours, no Optuna.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sweep.rules.divergence import ACTIONS, STALLED, Diagnosis, fmt

# Derived from the grow stages of 42 seeds of the default clock config on AVX-512 kernels
# (bench/results/grow_stall.md: 1 grew most of the way, 41 stalled) and checked on 57 seeds with
# oneDNN limited to AVX2 (bench/results/grow_avx2.md: 3 grew): it stops every stall and no success.
#
# Saturated: T unchanged for STALL_PATIENCE epochs (above the lowest T seen, which every run
# leaves at its own pace), each with mean gradient norm under STALL_GRAD_NORM while the
# prefix is not learnt (online loss above STALL_UNLEARNT_LOSS). Stalls sat at 0.003-0.05. One
# AVX2 success (seed 20) sat at T = 150 with norms 0.096, 0.078, 0.136 before it grew: 0.1
# would have let it through by one epoch, so the threshold is 0.05 (its lowest, 0.078, is
# 1.6x above); the stalls this no longer stops early are stopped at the end of the grow stage.
STALL_PATIENCE = 3
STALL_GRAD_NORM = 0.05
STALL_UNLEARNT_LOSS = 0.012
# Not started: at the end of the grow stage, a clock short of full length one of whose
# blocks is still at or above this honest MSE has not started that oscillator, and full-length
# training does not create a missing one (clock-reliability.md: a 1 Hz block at ~0.55 stayed
# at 0.5). One with every block under it goes on to the full-length stage.
STARTED_BLOCK_MSE = 0.2


@dataclass(frozen=True)
class GrowEpoch:
    """What the stall rule reads of one grow epoch."""

    prefix: int
    """The prefix length T at the end of the epoch."""
    worst_block: float
    """The largest per-frequency honest validation MSE at its end."""
    online_loss: float
    """Mean training loss of its updates (on the prefix)."""
    grad_norm: float
    """Mean gradient norm of its updates."""


def check_stalled(epochs: Sequence[GrowEpoch], full_length: int, last_grow_epoch: int,
                  before: int = 0) -> str | None:  # fmt: skip
    """Whether a grow stage seen up to its latest epoch has stalled: a sentence, or None.
    ``before``: epochs of the run before this grow stage's first (earlier attempts), so the
    sentence names the run's epoch."""
    if not epochs or epochs[-1].prefix >= full_length:
        return None
    n, t = len(epochs), epochs[-1].prefix
    window = epochs[-STALL_PATIENCE:]
    first_t = min(e.prefix for e in epochs)
    if (
        n > STALL_PATIENCE
        and t > first_t
        and epochs[-1 - STALL_PATIENCE].prefix == t
        and all(e.grad_norm < STALL_GRAD_NORM for e in window)
        and all(e.online_loss > STALL_UNLEARNT_LOSS for e in window)
    ):
        return (
            f"saturated: T = {t} unchanged for {STALL_PATIENCE} epochs with gradient norm "
            f"under {STALL_GRAD_NORM} (at most {max(e.grad_norm for e in window):.4f}) while "
            f"its prefix is not learnt (online loss at least "
            f"{min(e.online_loss for e in window):.4f}), at epoch {before + n}"
        )
    if n >= last_grow_epoch and epochs[-1].worst_block >= STARTED_BLOCK_MSE:
        return (
            f"grow stage over at epoch {before + n} with T = {t} < {full_length} and a block at "
            f"honest MSE {fmt(epochs[-1].worst_block)}: that oscillator never started, and "
            "full-length training does not create one"
        )
    return None


def diagnose_grow(epochs: Sequence[GrowEpoch], full_length: int, last_grow_epoch: int,
                  before: int = 0) -> Diagnosis | None:  # fmt: skip
    """The first grow epoch at which ``check_stalled`` fires, replayed epoch by epoch; its
    epoch counted in the run (``before`` epochs precede this grow stage)."""
    for n in range(1, len(epochs) + 1):
        reason = check_stalled(epochs[:n], full_length, last_grow_epoch, before)
        if reason is not None:
            return Diagnosis(STALLED, before + n, ACTIONS[STALLED], reason)
    return None
