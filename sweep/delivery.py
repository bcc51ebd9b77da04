"""A trial's end: its best checkpoint (the model it delivers) evaluated honestly on every set,
saved as ``best.npz``, and its numbers recorded on the trial."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna

from model.data import DataConfig, SignalSet, make_set
from model.delivered import save_model
from model.method import Method, Run
from sweep import records as rec
from sweep.criteria import at_floor, mse_ratio, tier
from sweep.identity import data_floor
from sweep.settings import SweepConfig


@dataclass(frozen=True)
class Sets:
    train: SignalSet
    val: SignalSet
    test: SignalSet

    @classmethod
    def build(cls, config: SweepConfig) -> Sets:
        d = config.data
        return cls(
            make_set(config.train_seed, d),
            make_set(config.val_seed, d),
            make_set(config.test_seed, d),
        )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def per_freq_attr(freqs: tuple[float, ...], values: tuple[float, ...]) -> dict[str, float | None]:
    return {f"{f:g}Hz": rec.num(v) for f, v in zip(freqs, values, strict=True)}


def deliver(
    trial: optuna.Trial,
    method: Method,
    run: Run,
    sets: Sets,
    data: DataConfig,
    folder: Path,
    started: float,
    stop: str,
    log: Callable[[str], None],
) -> float:
    """Evaluate the best checkpoint on every set, save it, record it; returns the objective
    (its honest validation MSE)."""
    state, floor = run.state, data_floor(data)
    weights = state.best_weights if state.best_weights is not None else state.weights
    train = run.evaluate(sets.train, weights)
    val = run.evaluate(sets.val, weights)
    test = run.evaluate(sets.test, weights)
    best_path = folder / rec.BEST
    meta = {"train_mse": train.mse, "val_mse": val.mse, "test_mse": test.mse,
            "epoch": state.best_epoch or state.epoch}  # fmt: skip
    save_model(weights, state.config, meta, best_path)
    attrs = {
        rec.TRAIN_MSE: rec.num(train.mse),
        rec.VAL_MSE: rec.num(val.mse),
        rec.TEST_MSE: rec.num(test.mse),
        rec.TEST_TRAIN_RATIO: rec.num(mse_ratio(train.mse, test.mse)),
        rec.TEST_MSE_PER_FREQ: per_freq_attr(data.frequencies, test.per_freq),
        rec.TIER: tier(train.mse, test.mse),
        rec.AT_FLOOR: at_floor(val.mse, floor),
        rec.EPOCHS: state.epoch,
        rec.BEST_EPOCH: meta["epoch"],
        rec.STOP_REASON: stop,
        rec.FINAL_ONLINE_LOSS: rec.num(state.history[-1].online_loss),
        rec.WALL_SECONDS: round(time.perf_counter() - started, 3),
        rec.PEAK_RSS_MB: round(peak_rss_mb(), 1),
        rec.BEST_CHECKPOINT: str(best_path),
        rec.ENGINE: method.engine(state.config),
    }
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    log(
        f"trial {trial.number} done ({stop}): {method.describe(state.config)} epochs "
        f"{state.epoch} train MSE {train.mse:.4f} val MSE {val.mse:.4f} test MSE "
        f"{test.mse:.4f} tier {attrs[rec.TIER]}"
        + ("  [at the predict-zero floor]" if attrs[rec.AT_FLOOR] else "")
    )
    return val.mse
