"""One L=1 training run of the plan, epoch by epoch, with the caller free to stop it."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from model.data import SignalSet
from model.l1.config import TrainConfig
from model.l1.engine import AdamState, Engine
from model.l1.schedule import EarlyStopping, PlateauSchedule
from model.method import STOP_EARLY, STOP_MAX_EPOCHS, STOP_NON_FINITE, EpochReport
from model.params import Evaluation, Weights, init_weights, score


@dataclass(frozen=True)
class TrainState:
    """Everything needed to continue a run exactly where it stopped."""

    config: TrainConfig
    epoch: int
    weights: Weights
    adam: AdamState
    plateau: PlateauSchedule
    early: EarlyStopping
    history: tuple[EpochReport, ...] = ()
    best_weights: Weights | None = None
    stop_reason: str | None = None

    @property
    def best_epoch(self) -> int:
        """The epoch whose end gave ``best_weights`` (0: none yet)."""
        return self.early.best_epoch


def engine_class(name: str) -> type[Engine]:
    """Imported on demand: the reference needs torch, which the compiled engine does not."""
    if name == "fast":
        from model.l1.fast import FastEngine

        return FastEngine
    from model.l1.reference import ReferenceEngine

    return ReferenceEngine


def initial_state(config: TrainConfig, input_size: int) -> TrainState:
    weights = init_weights(input_size, config.hidden_size, config.seed)
    return TrainState(
        config=config,
        epoch=0,
        weights=weights,
        adam=AdamState.zeros_like(weights),
        plateau=PlateauSchedule(config.lr, config.plateau_factor, config.plateau_patience),
        early=EarlyStopping(config.early_stopping_patience),
    )


@dataclass
class Training:
    """Runs epochs of one configuration; ``state`` after any epoch is a checkpoint."""

    train_set: SignalSet
    val_set: SignalSet
    state: TrainState
    engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.state.config
        input_size = self.train_set.inputs.shape[-1]
        self.engine = engine_class(cfg.engine)(self.state.weights, input_size, cfg.hidden_size)
        self.engine.load(self.state.weights, self.state.adam)

    @classmethod
    def start(cls, config: TrainConfig, train_set: SignalSet, val_set: SignalSet) -> Training:
        return cls(train_set, val_set, initial_state(config, train_set.inputs.shape[-1]))

    @property
    def finished(self) -> bool:
        return self.state.stop_reason is not None

    def epochs(self) -> Iterator[EpochReport]:
        """Yield one report per epoch until the run stops; the caller may break at any time
        (pruning): ``state`` then holds the last completed epoch."""
        while not self.finished:
            yield self.run_epoch()

    def run_epoch(self) -> EpochReport:
        s = self.state
        cfg = s.config
        epoch = s.epoch + 1
        lr = s.plateau.lr
        start = time.perf_counter()
        steps = self.engine.train_epoch(self.train_set, lr, cfg.clip)
        train_eval = self.evaluate(self.train_set)
        val_eval = self.evaluate(self.val_set)
        seconds = time.perf_counter() - start
        plateau = s.plateau.step(val_eval.mse)
        early = s.early.step(epoch, val_eval.mse)
        weights = self.engine.weights()
        best = weights if early.improved else s.best_weights
        if steps.non_finite:
            # The bad step was not applied: the weights stay the last finite ones.
            stop = STOP_NON_FINITE
        elif early.should_stop:
            stop = STOP_EARLY
        elif epoch >= cfg.epochs:
            stop = STOP_MAX_EPOCHS
        else:
            stop = None
        online = math.nan if steps.non_finite else steps.online_loss
        report = EpochReport(
            epoch=epoch,
            online_loss=online,
            train_mse=train_eval.mse,
            val_mse=val_eval.mse,
            val_per_freq=val_eval.per_freq,
            grad_norm_mean=steps.grad_norm_mean,
            grad_norm_max=steps.grad_norm_max,
            lr=lr,
            seconds=seconds,
            steps=steps.steps,
            stop_reason=stop,
        )
        self.state = replace(
            s,
            epoch=epoch,
            weights=weights,
            adam=self.engine.adam_state(),
            plateau=plateau,
            early=early,
            history=(*s.history, report),
            best_weights=best,
            stop_reason=stop,
        )
        return report

    def evaluate(self, data: SignalSet, weights: Weights | None = None) -> Evaluation:
        """Honest MSE of the current weights (or of ``weights``) on a whole set."""
        if weights is None:
            return score(self.engine.predict(data), data)
        cfg = self.state.config
        other = engine_class(cfg.engine)(weights, data.inputs.shape[-1], cfg.hidden_size)
        return score(other.predict(data), data)
