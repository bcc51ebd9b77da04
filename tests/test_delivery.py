"""The delivered model's train and validation numbers: taken from its best epoch, they must be
exactly what evaluating it again gives."""

from __future__ import annotations

import pytest

from model.clock.config import ClockConfig
from model.clock.training import ClockTraining
from model.data import DataConfig, make_set
from model.l1.config import TrainConfig
from model.l1.training import Training
from sweep.delivery import Sets, best_scores

DATA = DataConfig(samples=40)


@pytest.fixture(scope="module")
def sets() -> Sets:
    return Sets(make_set(1, DATA), make_set(3, DATA), make_set(2, DATA))


def _fresh(run, sets: Sets, weights) -> tuple[float, float]:
    return run.evaluate(sets.train, weights).mse, run.evaluate(sets.val, weights).mse


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_l1_best_epoch_scores_are_the_delivered_models(sets, engine) -> None:
    # lr high enough that validation gets worse again: the best is not the last epoch.
    cfg = TrainConfig(lr=3e-2, epochs=30, early_stopping_patience=2, engine=engine)
    run = Training.start(cfg, sets.train, sets.val)
    reports = list(run.epochs())
    best = run.state.best_weights
    assert run.state.best_epoch < len(reports)
    assert best_scores(run, sets, best) == _fresh(run, sets, best)
    # Weights no epoch ended with (here the last ones, not the best) are evaluated afresh.
    assert best_scores(run, sets, run.state.weights) == _fresh(run, sets, run.state.weights)


@pytest.mark.parametrize("ignore_s", [True, False])
def test_clock_best_epoch_scores_are_the_delivered_models(sets, ignore_s) -> None:
    cfg = ClockConfig(prefix_start=4, grow_updates=6, tune_updates=4, updates_per_epoch=2,
                      tune_warmup=2, hidden_size=8, ignore_s=ignore_s)  # fmt: skip
    run = ClockTraining.start(cfg, sets.train, sets.val, DATA)
    list(run.epochs())
    best = run.state.best_weights
    assert best_scores(run, sets, best) == _fresh(run, sets, best)
