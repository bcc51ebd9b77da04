"""A toy method: it fits only the head's bias, so the model predicts one constant everywhere
(the LSTM's weights are zero, its output zero), and its honest MSE is that constant's.

Built to reach every part of the interface a real method may use, each in its own words: two
stages of its own names ("settle", then "fit"), of which the plan's rules judge only "fit"
(the "settle" stage jumps, on purpose), a curve of its own ("bias"), progress text, report
texts and a searched step that diverges when too long. It relies on the base class for
everything else.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from model.checkpoint import CheckpointError, atomic_write
from model.data import DataConfig, SignalSet
from model.method import (
    JUDGED,
    STAGE,
    STOP_MAX_EPOCHS,
    ChoiceParam,
    EpochReport,
    LeadCheck,
    Method,
    Param,
    Reporting,
    Settings,
    StallCheck,
)
from model.params import Evaluation, Weights, param_shapes, score

SETTLE, FIT = "settle", "fit"
SETTLE_EPOCHS = 2
STEPS = (0.5, 2.5)
"""The searched step of each fit epoch: 0.5 halves the bias each epoch (a healthy fall to
the floor); 2.5 overshoots further each time (the plan's jump rule stops it)."""
DISCLOSURE = "Trained by the toy method: a constant, fitted by its bias alone."


@dataclass(frozen=True)
class ToyConfig:
    METHOD: ClassVar[str] = "toy"
    step: float = 0.5
    start: float = 1.0
    epochs: int = 6
    hidden_size: int = 64


@dataclass(frozen=True)
class ToyReport(EpochReport):
    stage: str = SETTLE
    judged: bool = False
    bias: float = 0.0


@dataclass(frozen=True)
class ToyState:
    config: ToyConfig
    epoch: int
    weights: Weights
    best_weights: Weights | None
    history: tuple[ToyReport, ...]
    stop_reason: str | None
    best_epoch: int = 0


def constant(bias: float, input_size: int, hidden: int) -> Weights:
    shapes = param_shapes(input_size, hidden)
    weights = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}
    weights["head.bias"][0] = bias
    return weights


class ToyRun:
    def __init__(self, state: ToyState, train: SignalSet, val: SignalSet, data: DataConfig):
        self.state, self.train, self.val, self.data = state, train, val, data

    @property
    def finished(self) -> bool:
        return self.state.stop_reason is not None

    def evaluate(self, data: SignalSet, weights: Weights | None = None) -> Evaluation:
        bias = (weights or self.state.weights)["head.bias"][0]
        return score(np.full(data.targets.shape, bias, np.float32), data)

    def run_epoch(self) -> ToyReport:
        s, cfg = self.state, self.state.config
        epoch = s.epoch + 1
        bias = float(s.weights["head.bias"][0])
        stage = SETTLE if epoch <= SETTLE_EPOCHS else FIT
        # Settle: from 0 to the start value (a jump no rule may judge); fit: a step towards
        # the targets' mean (about 0).
        bias = 0.0 if epoch == 1 else cfg.start if stage == SETTLE else bias - cfg.step * bias
        weights = constant(bias, self.data.input_size, cfg.hidden_size)
        val = self.evaluate(self.val, weights)
        report = ToyReport(
            epoch=epoch, online_loss=val.mse, train_mse=self.evaluate(self.train, weights).mse,
            val_mse=val.mse, val_per_freq=val.per_freq, grad_norm_mean=abs(bias),
            grad_norm_max=abs(bias), lr=cfg.step, seconds=0.0, steps=1,
            stop_reason=STOP_MAX_EPOCHS if epoch >= cfg.epochs else None,
            stage=stage, judged=stage == FIT, bias=bias,
        )  # fmt: skip
        history = (*s.history, report)
        best = s.best_epoch
        if stage == FIT and (best == 0 or val.mse < history[best - 1].val_mse):
            best = epoch
        self.state = replace(
            s, epoch=epoch, weights=weights, history=history, stop_reason=report.stop_reason,
            best_weights=weights if best == epoch else s.best_weights, best_epoch=best,
        )  # fmt: skip
        return report


class ToyMethod(Method):
    name = ToyConfig.METHOD
    config_class = ToyConfig
    reporting = Reporting(
        axis="step",
        axis_title="fit step",
        floor_action="toy advice: a constant cannot beat the floor",
        at_floor_advice="Toy conclusion: a constant predicts the mean at best.",
        disclosure=DISCLOSURE,
    )
    curves = (STAGE, JUDGED, "bias")
    stages = (SETTLE, FIT)
    unordered_space = True

    def search_space(self, settings: Settings) -> tuple[Param, ...]:
        return (ChoiceParam("step", STEPS),)

    def first_params(self, settings: Settings) -> dict[str, Any] | None:
        return {"step": STEPS[0]}

    def make_config(self, params: Mapping[str, Any], settings: Settings) -> ToyConfig:
        return ToyConfig(**params, epochs=settings.epochs, hidden_size=settings.hidden_size)

    def start(self, config: ToyConfig, train: SignalSet, val: SignalSet, data: DataConfig,
              stall_check: StallCheck | None = None,
              leads: LeadCheck | None = None) -> ToyRun:  # fmt: skip
        # Nothing grows: the stall rule does not apply.
        weights = constant(0.0, data.input_size, config.hidden_size)
        return ToyRun(ToyState(config, 0, weights, None, (), None), train, val, data)

    def resume(self, state: ToyState, train: SignalSet, val: SignalSet, data: DataConfig,
               stall_check: StallCheck | None = None,
               leads: LeadCheck | None = None) -> ToyRun:  # fmt: skip
        return ToyRun(state, train, val, data)

    def save(self, state: ToyState, path: Path) -> None:
        atomic_write(pickle.dumps(state), path)

    def load(self, path: Path) -> ToyState:
        try:
            return pickle.loads(path.read_bytes())
        except Exception as exc:
            raise CheckpointError(f"{path}: {exc}") from exc

    def progress(self, config: ToyConfig, report: ToyReport) -> str:
        return f"toy bias {report.bias:.3f}"
