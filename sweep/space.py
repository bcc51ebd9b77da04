"""The search space of each training method: every ``suggest_*`` call of the sweep is here."""

from __future__ import annotations

import optuna

from sweep.settings import SweepConfig

#: Clock method ranges, around the measured recipe (lr scale 3e-3, threshold 0.01, 4
#: realisations per frequency, balanced loss). The seed matters most (2 of 5 seeds of the
#: defaults reach the minimum tier), then the glide of the grow-stage targets (off, the notes'
#: recipe, or 0.75 cycles: it rescued one seed of five), so both are searched.
CLOCK_LR_SCALE = (1e-3, 6e-3)
CLOCK_GROWTH_THRESHOLD = (5e-3, 3e-2)
CLOCK_REALISATIONS = (2, 4, 8)
CLOCK_GLIDE_CYCLES = (0.0, 0.75)
CLOCK_SEEDS = (0, 9999)
#: The ClockConfig fields each trial draws.
CLOCK_SEARCHED = ("lr_scale", "growth_threshold", "realisations", "balanced", "glide_cycles",
                  "seed")  # fmt: skip


def suggest(trial: optuna.Trial, config: SweepConfig) -> object:
    """The training config of one trial: a ``TrainConfig`` (l1) or a ``ClockConfig``."""
    if config.method == "l1":
        lr = trial.suggest_float("lr", config.lr_min, config.lr_max, log=True)
        return config.train_config(lr)
    from model.clock import ClockConfig

    per_epoch = config.updates_per_epoch
    return ClockConfig(
        lr_scale=trial.suggest_float("lr_scale", *CLOCK_LR_SCALE, log=True),
        growth_threshold=trial.suggest_float(
            "growth_threshold", *CLOCK_GROWTH_THRESHOLD, log=True
        ),
        realisations=trial.suggest_categorical("realisations", CLOCK_REALISATIONS),
        balanced=trial.suggest_categorical("balanced", (True, False)),
        glide_cycles=trial.suggest_categorical("glide_cycles", CLOCK_GLIDE_CYCLES),
        seed=trial.suggest_int("seed", *CLOCK_SEEDS),
        updates_per_epoch=per_epoch,
        grow_updates=config.grow_epochs * per_epoch,
        tune_updates=(config.epochs - config.grow_epochs) * per_epoch,
        tune_warmup=min(50, (config.epochs - config.grow_epochs) * per_epoch // 2),
        clip=config.clip,
        hidden_size=config.hidden_size,
    )
