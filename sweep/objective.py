"""The Optuna objective: one trial = one L=1 training run through model/."""

from __future__ import annotations

import math
import resource
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from model.checkpoint import CheckpointError, load_state, save_model, save_state
from model.data import PREDICT_ZERO_MSE, SignalSet, make_set
from model.training import STOP_NON_FINITE, Training, TrainState
from sweep import liveness
from sweep.criteria import mse_ratio, tier
from sweep.divergence import ACTIONS, Diagnosis, diagnose
from sweep.pruner import record_diagnosis
from sweep.recovery import STOP_INTERRUPTED
from sweep.settings import SweepConfig

#: An honest MSE above this fraction of 0.5 is "at the predict-zero floor".
FLOOR_FRACTION = 0.9
#: Per-epoch curves stored on each trial, for the dashboard and the report.
CURVES = (
    "online_loss",
    "train_mse",
    "val_mse",
    "grad_norm_mean",
    "grad_norm_max",
    "lr",
    "seconds",
)
STOP_PRUNED = "pruned"


def at_floor(mse: float) -> bool:
    return mse > FLOOR_FRACTION * PREDICT_ZERO_MSE


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


class SurplusTrial(Exception):
    """The study already holds (or is running) the trials asked for: this one is not needed."""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def checkpoint_dir(root: Path, study_name: str, number: int) -> Path:
    return root / study_name / f"trial-{number:04d}"


class Objective:
    def __init__(
        self, config: SweepConfig, sets: Sets, root: Path, log: Callable[[str], None] = print
    ) -> None:
        self.config = config
        self.sets = sets
        self.root = root
        self.log = log

    def __call__(self, trial: optuna.Trial) -> float:
        self._refuse_surplus(trial)
        lr = trial.suggest_float("lr", self.config.lr_min, self.config.lr_max, log=True)
        folder = checkpoint_dir(self.root, trial.study.study_name, trial.number)
        trial.set_user_attr("worker", liveness.worker_id())
        trial.set_user_attr("checkpoint", str(folder / "last.pt"))
        training = self._start(trial, lr)
        started = time.perf_counter() - sum(r.seconds for r in training.state.history)
        try:
            while not training.finished:
                report = training.run_epoch()
                save_state(training.state, folder / "last.pt")
                self._record_epoch(trial, training.state)
                verdict = self._judge(trial, training.state)
                self.log(
                    f"trial {trial.number} epoch {report.epoch}/{self.config.epochs} "
                    f"lr {report.lr:.2e} online loss {report.online_loss:.4f} "
                    f"train MSE {report.train_mse:.4f} val MSE {report.val_mse:.4f} "
                    f"[{verdict.verdict}] {report.seconds:.1f}s"
                )
                if verdict.stop:
                    record_diagnosis(trial, verdict)
                    self._finish(trial, training, folder, started, STOP_PRUNED)
                    raise optuna.TrialPruned(verdict.reason)
        except KeyboardInterrupt:
            trial.set_user_attr("stop_reason", STOP_INTERRUPTED)
            raise
        record_diagnosis(trial, diagnose([r.val_mse for r in training.state.history]))
        return self._finish(trial, training, folder, started, training.state.stop_reason or "")

    def _refuse_surplus(self, trial: optuna.Trial) -> None:
        others = trial.study.get_trials(deepcopy=False)
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in others)
        running = sum(
            t.state == TrialState.RUNNING and t.number != trial.number and liveness.alive(t)
            for t in others
        )
        if done + running >= self.config.trials:
            trial.study.stop()
            raise SurplusTrial(f"{done} finished and {running} running: nothing left to do")

    def _start(self, trial: optuna.Trial, lr: float) -> Training:
        """A fresh run, or the continuation of a dead or interrupted trial's checkpoint."""
        config = self.config.train_config(lr)
        previous = trial.user_attrs.get("continues_checkpoint")
        if previous:
            try:
                state = load_state(Path(previous))
                if state.config != config:
                    raise CheckpointError("it was made with another configuration")
                trial.set_user_attr("continued_from", trial.user_attrs.get("continues_trial"))
                self.log(
                    f"trial {trial.number}: continuing from epoch {state.epoch} of {previous}"
                )
                with warnings.catch_warnings():
                    # The dead trial's values were inherited; Optuna skips those with a warning.
                    warnings.simplefilter("ignore")
                    for r in state.history:
                        trial.report(r.val_mse, r.epoch)
                return Training(self.sets.train, self.sets.val, state)
            except CheckpointError as exc:
                self.log(f"warning: trial {trial.number}: cannot continue from {previous} ({exc});"
                         " starting from scratch")  # fmt: skip
        return Training.start(config, self.sets.train, self.sets.val)

    def _record_epoch(self, trial: optuna.Trial, state: TrainState) -> None:
        for name in CURVES:
            trial.set_user_attr(f"curve_{name}", [_num(getattr(r, name)) for r in state.history])
        trial.report(state.history[-1].val_mse, state.history[-1].epoch)

    def _judge(self, trial: optuna.Trial, state: TrainState) -> Diagnosis:
        last = state.history[-1]
        if last.stop_reason == STOP_NON_FINITE:
            return Diagnosis(
                "non_finite", last.epoch, ACTIONS["non_finite"],
                f"non-finite loss or gradient in epoch {last.epoch}; the bad step was not applied",
            )  # fmt: skip
        if trial.should_prune():
            return diagnose([r.val_mse for r in state.history])
        return diagnose([])

    def _finish(
        self, trial: optuna.Trial, training: Training, folder: Path, started: float, stop: str
    ) -> float:
        """Evaluate the best checkpoint (the model this trial delivers) on every set."""
        state = training.state
        weights = state.best_weights if state.best_weights is not None else state.weights
        train = training.evaluate(self.sets.train, weights)
        val = training.evaluate(self.sets.val, weights)
        test = training.evaluate(self.sets.test, weights)
        best_path = folder / "best.pt"
        meta = {"train_mse": train.mse, "val_mse": val.mse, "test_mse": test.mse,
                "epoch": state.early.best_epoch or state.epoch}  # fmt: skip
        save_model(weights, state.config, meta, best_path)
        attrs = {
            "train_mse": train.mse,
            "val_mse": val.mse,
            "test_mse": test.mse,
            "test_train_ratio": _num(mse_ratio(train.mse, test.mse)),
            "test_mse_per_freq": per_freq_attr(self.config.data.frequencies, test.per_freq),
            "tier": tier(train.mse, test.mse),
            "at_floor": at_floor(val.mse),
            "epochs": state.epoch,
            "best_epoch": meta["epoch"],
            "stop_reason": stop,
            "final_online_loss": _num(state.history[-1].online_loss),
            "wall_seconds": round(time.perf_counter() - started, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "best_checkpoint": str(best_path),
            "engine": state.config.engine,
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        self.log(
            f"trial {trial.number} done ({stop}): lr {state.config.lr:.2e} epochs {state.epoch} "
            f"train MSE {train.mse:.4f} val MSE {val.mse:.4f} test MSE {test.mse:.4f} "
            f"tier {attrs['tier']}"
            + ("  [at the predict-zero floor]" if attrs["at_floor"] else "")
        )
        return val.mse


def per_freq_attr(freqs: tuple[float, ...], values: tuple[float, ...]) -> dict[str, float]:
    return {f"{f:g}Hz": v for f, v in zip(freqs, values, strict=True)}


def _num(x: float) -> float | None:
    """JSON (and so Optuna's user attributes) has no NaN or Inf: store them as null."""
    return x if math.isfinite(x) else None
