"""The clock method's configuration and the schedules it defines (prefix growth, learning
rates, grow-stage targets), all driven by update counts so a run is a function of its config."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from model.data import DataConfig
from model.params import HIDDEN_SIZE

STAGE_GROW = "grow"
STAGE_TUNE = "tune"
STAGE_POLISH = "polish"
#: What may compute the polish stage's losses and gradients (``ClockConfig.polish_engine``).
CLOCK_ENGINES = ("compiled", "torch")
GROWTH_GATES = ("mean", "worst")


@dataclass(frozen=True)
class ClockConfig:
    """One clock-learning run. The defaults are the measured recipe (bench/results/grow_screen.md):
    a seed whose grow stage reaches full length is a good-tier model in ~2.5 CPU-minutes."""

    METHOD: ClassVar[str] = "clock"

    realisations: int = 1
    """Fresh noise realisations per frequency per grow update (batch = this x frequencies)."""
    prefix_start: int = 100
    """Initial prefix length T, in samples."""
    min_cycles: float = 0.0
    """Every block's prefix spans at least this many of its periods (so its target turns
    from the first update); T applies where longer. 0: every block uses T. (1.0 did worse in
    the one run measured: a whole cycle from scratch stayed near 0.3-0.4.)"""
    glide_cycles: float = 0.75
    """Grow stage only: block b's target is sin(2 pi f t) with f = max(f_b, glide_cycles *
    sample_rate / T), so every block's prefix holds at least this many cycles and a slow
    block's target glides down to its own frequency as T grows (an oscillator is tuned
    down instead of a ramp being learnt; 0 = off, targets are always the true sines)."""
    growth: float = 1.5
    """T is multiplied by this (capped at the block length) when the prefix is learnt."""
    growth_threshold: float = 0.01
    """T grows when the EMA of the prefix MSE falls below this."""
    growth_gate: str = "mean"
    """Which prefix MSE must be under growth_threshold: "mean" over the blocks, or the
    "worst" block's (a lagging slow block then holds T until it has learnt its prefix)."""
    ema: float = 0.9
    """Smoothing factor of that EMA (weight on the old value)."""
    ema_reset: bool = True
    """Restart the EMA after each growth, so T grows at most once per learnt prefix."""
    lr_scale: float = 3e-3
    """Grow-stage lr = lr_scale * min(1, (lr_ref_length / T) ** lr_power)."""
    lr_ref_length: int = 300
    """Prefix length up to which the grow lr is lr_scale."""
    lr_power: float = 0.75
    """How fast the grow lr falls with T beyond lr_ref_length."""
    clip: float = 1.0
    """Gradient-norm clip (global L2 norm over all parameters)."""
    balanced: bool = True
    """Weight each frequency's MSE by its share of the total (weights held constant)."""
    grow_updates: int = 2400
    """Updates in the grow stage (a multiple of updates_per_epoch)."""
    tune_updates: int = 300
    """Updates in the tune stage at full length (a multiple of updates_per_epoch)."""
    tune_when_grown: bool = True
    """Start the tune stage as soon as T reaches the block length (the grow budget is then a
    most, and a run that grows early ends early)."""
    grow_until: int = 0
    """With tune_when_grown: the grow stage ends once T reaches this (0, or above the block
    length: the block length). The full-length stages then finish the clock from a prefix of
    that length; the long prefixes are the grow stage's dearest epochs."""
    grow_ends_at_once: bool = True
    """With tune_when_grown: the grow stage ends at the update where T reaches grown_at,
    instead of running the rest of that epoch at the grow stage's dearest prefix. The
    full-length stage then starts from the best weights so far, as it would at the epoch's
    end (bench/results/grow_tail.md)."""
    tune_realisations: int = 1
    """Realisations per frequency per tune update."""
    tune_lr_max: float = 5e-5
    """Tune lr after warm-up; it then follows a cosine down to tune_lr_min."""
    tune_lr_min: float = 1e-6
    """Tune lr at the last update."""
    tune_warmup: int = 50
    """Updates of linear warm-up from 0 to tune_lr_max (a fresh Adam jolts without it)."""
    polish_evaluations: int = 0
    """Loss+gradient evaluations of the polish stage: L-BFGS on the full-length loss after
    the tune stage (``model.clock.polish``; a multiple of updates_per_epoch, an epoch then
    being updates_per_epoch evaluations; 0: no polish). Needs ignore_s, which makes that loss
    deterministic."""
    polish_history: int = 20
    """L-BFGS history size (pairs of steps and gradient changes kept)."""
    grow_lbfgs: int = 0
    """Grow stage: the last this-many of each epoch's updates are one L-BFGS call (fresh
    history, polish_history pairs, strong-Wolfe line search) on the current prefix's plain
    MSE, which is deterministic with ignore_s; each evaluation counts as an update. T grows
    at once when the call leaves the prefix MSE under growth_threshold. 0: Adam only."""
    grow_lbfgs_after: int = 0
    """Make that L-BFGS call only in an epoch that starts with T flat for at least this many
    whole epochs (a plateau of Adam's; the epoch is all Adam otherwise). 0: every epoch."""
    grow_lbfgs_min_prefix: int = 0
    """Make it only at T above this (prefix_start: never on the initial plateau at T =
    prefix_start, where L-BFGS changed which seeds grow). 0: at any T."""
    stall_rescue: int = 0
    """Grow stage: when the stall rule (the trainer's ``stall_check``) calls the attempt
    saturated before its grow budget is spent, first make one L-BFGS call of this many
    evaluations on the stalled prefix (as ``grow_lbfgs`` does, fresh history); T grows and the
    attempt goes on when the call leaves the prefix MSE under growth_threshold, else it is
    given up as before. Its evaluations are reported as steps but not counted as updates, so
    the grow budget and every schedule stay as they were. 0: no rescue."""
    polish_target: float = 0.0
    """The polish stops once the honest validation MSE is under this (0: spend the budget),
    unless the run leads its study (below)."""
    polish_goal_after: int = 0
    """polish_target counts only from this many polish evaluations on (a multiple of
    updates_per_epoch): every run is then compared for the lead after the same effort, and one
    already under the target after one epoch shows whether it still descends (0: from the
    first epoch)."""
    polish_give_up: float = 0.0
    """From polish_goal_after evaluations on, the polish stops while the honest validation MSE
    is above this: a run that far behind its target is not worth the rest of its budget (0:
    never; above polish_target when both are set)."""
    polish_leader_evaluations: int = 0
    """A run that has met polish_target or spent polish_evaluations goes on polishing while
    the trainer's ``leads`` check says it leads its study, up to this many polish evaluations
    in all (a multiple of updates_per_epoch; 0 or not above polish_evaluations: it never goes
    on). The sweep's leader is its best finished model (``sweep.leaders``)."""
    polish_leader_target: float = 0.0
    """A leading run's polish stops once its honest validation MSE is under this (0: it
    spends polish_leader_evaluations)."""
    max_restarts: int = 0
    """Grow stage: restart from new initial weights at most this many times when stalled (by
    the stall rule the trainer is given: ``model.method.StallCheck``; without one, never)."""
    updates_per_epoch: int = 100
    """Updates per reported epoch: the unit of reports, validation and pruning."""
    hidden_size: int = HIDDEN_SIZE
    """LSTM hidden units (one layer)."""
    forget_bias: float = 0.0
    """Added to the forget gate's input bias after the default initialisation (a standard
    init for long memories; 0 keeps PyTorch's default; 1.0 was no better on 3 seeds)."""
    polish_engine: str = "compiled"
    """What computes the polish stage's loss and gradient: "compiled" (``model.sequence``,
    numba loops over the steps, 1.4x torch's speed at the full length in chunks that keep a
    worker's memory near torch's; bench/results/sequence.md) or "torch" (``nn.LSTM`` and
    autograd, as every clock result recorded before 2026-12-03 was polished). Both compute
    the same loss and gradient to float32 rounding. The grow and tune stages stay in torch:
    there a last-bit difference sends a growing clock down another path, so the recorded
    grow screens and the sweep's first seed hold only for torch."""
    grow_engine: str = "torch"
    """What computes the grow stage's losses and gradients (its Adam updates, its L-BFGS
    calls and the stall rescue's): "torch" or "compiled", as polish_engine."""
    ignore_s: bool = True
    """Hold the input weights of S at zero (from the start, and their gradient dropped): the
    model then ignores S exactly, so under this noise, which says nothing about t, its honest
    MSE is the same on every noise seed, and one realisation per block is as good as many."""
    seed: int = 0
    """Seed of the weight initialisation and of the training noise."""

    def __post_init__(self) -> None:
        for name in ("realisations", "prefix_start", "tune_realisations", "updates_per_epoch",
                     "hidden_size", "lr_ref_length"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("grow_updates", "tune_updates", "tune_warmup", "max_restarts",
                     "polish_evaluations", "stall_rescue", "polish_leader_evaluations",
                     "polish_goal_after", "grow_until"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
            budget = name in ("grow_updates", "tune_updates", "polish_evaluations",
                              "polish_leader_evaluations", "polish_goal_after")  # fmt: skip
            if budget and getattr(self, name) % self.updates_per_epoch:
                raise ValueError(
                    f"{name} must be a multiple of updates_per_epoch "
                    f"({self.updates_per_epoch}), got {getattr(self, name)}"
                )
        if self.total_updates < 1:
            raise ValueError("grow_updates + tune_updates + polish_evaluations must be positive")
        after, above = self.grow_lbfgs_after, self.grow_lbfgs_min_prefix
        if not (0 <= self.grow_lbfgs < self.updates_per_epoch) or min(after, above) < 0:
            raise ValueError(f"grow_lbfgs must be in [0, updates_per_epoch), grow_lbfgs_after "
                             f"and grow_lbfgs_min_prefix >= 0, got {self.grow_lbfgs}, {after}, "
                             f"{above}")  # fmt: skip
        if (self.grow_lbfgs or self.stall_rescue) and not self.ignore_s:
            raise ValueError("grow_lbfgs and stall_rescue need ignore_s: only then is the "
                             "prefix loss deterministic")  # fmt: skip
        if self.polish_evaluations and not self.ignore_s:
            raise ValueError("polish_evaluations needs ignore_s: only then is the full-length "
                             "loss deterministic")  # fmt: skip
        for name in ("polish_engine", "grow_engine"):
            if getattr(self, name) not in CLOCK_ENGINES:
                raise ValueError(f"{name} must be one of {', '.join(CLOCK_ENGINES)}, "
                                 f"got {getattr(self, name)!r}")  # fmt: skip
        if self.polish_history < 1 or min(self.polish_target, self.polish_leader_target) < 0:
            raise ValueError(f"polish_history must be positive, polish_target and "
                             f"polish_leader_target >= 0, got {self.polish_history}, "
                             f"{self.polish_target}, {self.polish_leader_target}")  # fmt: skip
        if self.polish_give_up and not self.polish_target < self.polish_give_up < 1:
            raise ValueError(f"polish_give_up must be 0 or in (polish_target, 1), got "
                             f"{self.polish_give_up} with polish_target "
                             f"{self.polish_target}")  # fmt: skip
        if self.min_cycles < 0 or self.glide_cycles < 0:
            raise ValueError(f"min_cycles and glide_cycles must be >= 0, got "
                             f"{self.min_cycles}, {self.glide_cycles}")  # fmt: skip
        if self.growth_gate not in GROWTH_GATES:
            raise ValueError(
                f"growth_gate must be one of {GROWTH_GATES}, got {self.growth_gate!r}"
            )
        if self.growth <= 1.0:
            raise ValueError(f"growth must be > 1, got {self.growth}")
        if not (0.0 <= self.ema < 1.0):
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        for name in ("growth_threshold", "lr_scale", "clip", "tune_lr_max", "lr_power"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not (0.0 <= self.tune_lr_min <= self.tune_lr_max):
            raise ValueError(f"tune_lr_min must be in [0, tune_lr_max], got {self.tune_lr_min}")

    @property
    def total_updates(self) -> int:
        return self.grow_updates + self.tune_updates + self.polish_evaluations

    @property
    def polish_most(self) -> int:
        """Most evaluations of the polish stage: a leader's budget where there is one."""
        if not self.polish_evaluations:
            return 0
        return max(self.polish_evaluations, self.polish_leader_evaluations)

    @property
    def epochs(self) -> int:
        """Most epochs of a run: every attempt's whole grow budget, the tune stage, then the
        polish (a leader's budget included)."""
        grow = self.grow_updates * (1 + self.max_restarts)
        return (grow + self.tune_updates + self.polish_most) // self.updates_per_epoch

    def grow_lr(self, length: int) -> float:
        """Grow-stage lr for a batch of ``length`` steps."""
        return self.lr_scale * min(1.0, (self.lr_ref_length / length) ** self.lr_power)

    def target_frequencies(self, prefix: int, data: DataConfig, stage: str) -> tuple[float, ...]:
        """Frequencies of the training targets at prefix T (the true ones when tuning)."""
        if stage != STAGE_GROW or self.glide_cycles == 0:
            return data.frequencies
        low = self.glide_cycles * data.sample_rate / prefix
        return tuple(max(f, low) for f in data.frequencies)

    def block_prefixes(self, prefix: int, data: DataConfig) -> tuple[int, ...]:
        """Prefix of each block for the prefix T."""
        floor = [math.ceil(self.min_cycles * data.sample_rate / f) for f in data.frequencies]
        return tuple(min(data.samples, max(prefix, m)) for m in floor)

    def tune_lr(self, k: int) -> float:
        """lr of tune update k (0-based): linear warm-up, then cosine to tune_lr_min."""
        if k < self.tune_warmup:
            return self.tune_lr_max * (k + 1) / self.tune_warmup
        span = max(1, self.tune_updates - self.tune_warmup - 1)
        frac = min(1.0, (k - self.tune_warmup) / span)
        cos = 0.5 * (1.0 + math.cos(math.pi * frac))
        return self.tune_lr_min + (self.tune_lr_max - self.tune_lr_min) * cos

    def grown_at(self, samples: int) -> int:
        """The prefix length at which the grow stage is over, for blocks of ``samples``."""
        return min(samples, self.grow_until) if self.grow_until else samples

    def next_prefix(self, prefix: int, samples: int) -> int:
        return min(samples, max(prefix + 1, math.ceil(prefix * self.growth)))
