"""The plan's L=1 method behind the ``model.method.Method`` interface."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from model.data import DataConfig, SignalSet
from model.l1 import checkpoint
from model.l1.config import BATCH_SIZE, SEQUENCE_LENGTH, TrainConfig
from model.l1.training import Training, TrainState, engine_class
from model.method import (
    FloatParam,
    LeadCheck,
    Method,
    Param,
    Reporting,
    Settings,
    StallCheck,
)
from model.params import init_weights

#: Settings that mean something for this method only: part of its studies' identity.
_OWN_SETTINGS = ("lr_min", "lr_max", "plateau_factor", "plateau_patience",
                 "early_stopping_patience", "seed")  # fmt: skip


class L1Method(Method):
    name = TrainConfig.METHOD
    config_class = TrainConfig
    default_epochs = TrainConfig.epochs  # the plan's
    reporting = Reporting(
        axis="lr",
        axis_title="initial learning rate (log)",
        floor_action=("the learning rate is not the cause: at the floor, where S(t) says nothing "
                      "about t, one-step training stays at any lr; train a clock instead "
                      "(--method clock)"),
        at_floor_advice=("S(t) carries no information about t, so a model trained one sample "
                         "at a time sits there at any learning rate: the learning rate is not "
                         "what holds it back."),
    )  # fmt: skip
    default_study = "lstm-l1-lr"

    def search_space(self, settings: Settings) -> tuple[Param, ...]:
        return (FloatParam("lr", settings.lr_min, settings.lr_max, log=True),)

    def make_config(self, params: Mapping[str, Any], settings: Settings) -> TrainConfig:
        return TrainConfig(
            lr=params["lr"],
            epochs=settings.epochs,
            clip=settings.clip,
            plateau_factor=settings.plateau_factor,
            plateau_patience=settings.plateau_patience,
            early_stopping_patience=settings.early_stopping_patience,
            hidden_size=settings.hidden_size,
            seed=settings.seed,
            engine=settings.engine,
        )

    def identity(self, settings: Settings) -> dict[str, Any]:
        own = {name: getattr(settings, name) for name in _OWN_SETTINGS}
        return {"batch_size": BATCH_SIZE, "sequence_length": SEQUENCE_LENGTH, **own}

    def uses_torch(self, settings: Settings) -> bool:
        return settings.engine == "reference"

    def engine(self, config: TrainConfig) -> str:
        return config.engine

    def start(self, config: TrainConfig, train: SignalSet, val: SignalSet, data: DataConfig,
              stall_check: StallCheck | None = None,
              leads: LeadCheck | None = None) -> Training:  # fmt: skip
        # Nothing grows in the plan's loop: the stall rule does not apply.
        return Training.start(config, train, val)

    def resume(self, state: TrainState, train: SignalSet, val: SignalSet, data: DataConfig,
               stall_check: StallCheck | None = None,
               leads: LeadCheck | None = None) -> Training:  # fmt: skip
        return Training(train, val, state)

    def save(self, state: TrainState, path: Path) -> None:
        checkpoint.save_state(state, path)

    def load(self, path: Path) -> TrainState:
        return checkpoint.load_state(path)

    def adopt(self, state: TrainState, config: TrainConfig) -> TrainState | None:
        # Both engines compute the same run: a checkpoint of either continues in this one's.
        state = replace(state, config=replace(state.config, engine=config.engine))
        return state if state.config == config else None

    def warm_up(self, settings: Settings, data: DataConfig) -> None:
        # Imported here: every sweep loads this method to check the plan's flags, and a clock
        # worker that never loads numba peaks ~120 MB lower.
        from model import kernels

        tiny = kernels.tiny_set(data)
        weights = init_weights(data.input_size, settings.hidden_size, 0)
        engine = engine_class(settings.engine)(weights, data.input_size, settings.hidden_size)
        engine.train_epoch(tiny, 1e-4, settings.clip)
        kernels.warm_up(data, settings.hidden_size)  # the compiled engine predicts with it too

    def describe(self, config: TrainConfig) -> str:
        return f"lr {config.lr:.2e}"  # one optimizer throughout: delivered_by says nothing
