"""The clock method behind the ``model.method.Method`` interface."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from model.clock import state as clock_state
from model.clock.config import ClockConfig
from model.clock.state import ClockState
from model.clock.training import ClockTraining
from model.data import DataConfig, SignalSet
from model.method import ChoiceParam, FloatParam, IntParam, Param, Settings

#: Search ranges around the measured recipe (lr scale 3e-3, threshold 0.01, 4 realisations per
#: frequency, balanced loss). The seed matters most (2 of 5 seeds of the defaults reach the
#: minimum tier), then the glide of the grow-stage targets (off, or 0.75 cycles: it rescued one
#: seed of five), so both are searched.
LR_SCALE = (1e-3, 6e-3)
GROWTH_THRESHOLD = (5e-3, 3e-2)
REALISATIONS = (2, 4, 8)
GLIDE_CYCLES = (0.0, 0.75)
SEEDS = (0, 9999)
#: The best measured point: the defaults at the one seed of 42 whose grow stage reached
#: T = 8,675 with every block under 0.021 (bench/grow_stall.md). Every clock study starts here.
BEST_MEASURED = {"lr_scale": 3e-3, "growth_threshold": 0.01, "realisations": 4,
                 "balanced": True, "glide_cycles": 0.75, "seed": 14}  # fmt: skip
#: The share of a trial's epochs spent growing the prefix (the rest tune at full length): 80%,
#: as in the measured recipe.
GROW_SHARE = 0.8
#: Most warm-up updates of the tune stage (at most half of it).
TUNE_WARMUP = 50
#: Fields the sweep sets from its own flags rather than searching.
_SET_BY_SWEEP = ("updates_per_epoch", "grow_updates", "tune_updates", "tune_warmup", "clip",
                 "hidden_size")  # fmt: skip

DISCLOSURE = (
    "This model was trained with the clock method, not with the plan's L=1 loop: each update "
    "draws fresh noise and backpropagates from the zero state over a prefix of every block that "
    "grows as it is learnt, then fine-tunes at full length. It still answers the assignment, "
    "which allows L != 1 with a justification: the model is the same LSTM, it reads one sample "
    "per step with its state carried, and it is evaluated exactly as defined (frozen weights, "
    "whole sets, state reset at each block start). The justification: S(t) carries no "
    "information about t, so a frozen model can only beat 0.5 as a clock started by the reset, "
    "and one-step (L=1) gradients cannot teach a clock."
)


def grow_epochs(epochs: int) -> int:
    """Epochs of the growing-prefix stage: GROW_SHARE of them, and at least one of each stage
    where there are two epochs."""
    if epochs < 2:
        return epochs
    return min(epochs - 1, max(1, round(GROW_SHARE * epochs)))


class ClockMethod:
    name = ClockConfig.METHOD
    title = ("fresh noise, full backpropagation over a growing prefix, then a full-length "
             "fine-tune; searches its lr scale, growth threshold, batch of noise realisations, "
             "balanced loss, glide and seed")  # fmt: skip
    default_study = "lstm-clock"
    sweep_axis = ("lr_scale", "clock lr scale (log)")
    # Its online loss is a prefix MSE against grow-stage targets: meant to fall below the
    # growth threshold long before the model is any good.
    online_loss_is_comparable = False
    disclosure: str | None = DISCLOSURE
    floor_action = ("another seed: the learning rate is not the cause; this run learnt no "
                    "oscillator")  # fmt: skip
    at_floor_advice = ("No trial of this study learnt the clock. Seeds matter; more trials or "
                       "epochs help.")  # fmt: skip
    extra_curves = ("stage", "prefix", "val_per_freq", "attempt", "restarted", "judged")
    config_class = ClockConfig

    def search_space(self, settings: Settings) -> tuple[Param, ...]:
        return (
            FloatParam("lr_scale", *LR_SCALE, log=True),
            FloatParam("growth_threshold", *GROWTH_THRESHOLD, log=True),
            ChoiceParam("realisations", REALISATIONS),
            ChoiceParam("balanced", (True, False)),
            ChoiceParam("glide_cycles", GLIDE_CYCLES),
            IntParam("seed", *SEEDS),
        )

    def first_params(self, settings: Settings) -> dict[str, Any] | None:
        return dict(BEST_MEASURED)

    def make_config(self, params: Mapping[str, Any], settings: Settings) -> ClockConfig:
        per_epoch = settings.updates_per_epoch
        grow = grow_epochs(settings.epochs)
        tune = settings.epochs - grow
        return ClockConfig(
            **params,
            updates_per_epoch=per_epoch,
            grow_updates=grow * per_epoch,
            tune_updates=tune * per_epoch,
            tune_warmup=min(TUNE_WARMUP, tune * per_epoch // 2),
            clip=settings.clip,
            hidden_size=settings.hidden_size,
        )

    def identity(self, settings: Settings) -> dict[str, Any]:
        searched = {p.name for p in self.search_space(settings)}
        # The fixed settings, so a study refuses to mix runs of two recipes.
        recipe = {k: v for k, v in asdict(ClockConfig()).items()
                  if k not in searched and k not in _SET_BY_SWEEP}  # fmt: skip
        return {"updates_per_epoch": settings.updates_per_epoch, "clock_recipe": recipe}

    def judged_from(self, settings: Settings) -> int:
        # The grow stage's honest MSE is meant to swing while the prefix grows.
        return grow_epochs(settings.epochs) + 1

    def uses_torch(self, settings: Settings) -> bool:
        return True

    def engine(self, config: ClockConfig) -> str:
        return "torch"

    def start(self, config: ClockConfig, train: SignalSet, val: SignalSet, data: DataConfig
              ) -> ClockTraining:  # fmt: skip
        return ClockTraining.start(config, train, val, data)

    def resume(self, state: ClockState, train: SignalSet, val: SignalSet, data: DataConfig
               ) -> ClockTraining:  # fmt: skip
        return ClockTraining(train, val, state, data)

    def save(self, state: ClockState, path: Path) -> None:
        clock_state.save(state, path)

    def load(self, path: Path) -> ClockState:
        return clock_state.load(path)

    def adopt(self, state: ClockState, config: ClockConfig) -> ClockState | None:
        return state if state.config == config else None

    def describe(self, config: ClockConfig) -> str:
        return (f"clock lr scale {config.lr_scale:.2e} threshold {config.growth_threshold:.3g} "
                f"realisations {config.realisations} balanced {config.balanced} "
                f"seed {config.seed}")  # fmt: skip
