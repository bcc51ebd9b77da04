"""The Optuna objective: one trial = one training run (L=1 or clock) through model/."""

from __future__ import annotations

import math
import resource
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import optuna

from model import methods
from model.checkpoint import CheckpointError, save_model
from model.data import PREDICT_ZERO_MSE, SignalSet, make_set
from model.training import STOP_NON_FINITE
from sweep import liveness
from sweep.criteria import mse_ratio, tier
from sweep.divergence import ACTIONS, Diagnosis, diagnose
from sweep.paths import study_folder
from sweep.pruner import diagnose_from, record_diagnosis
from sweep.recovery import (
    STOP_CHECKPOINT_WRITE,
    STOP_DUPLICATE,
    STOP_INTERRUPTED,
    STOP_SURPLUS,
    CheckpointWriteError,
    occupancy,
)
from sweep.settings import SweepConfig
from sweep.space import suggest

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
#: Per trial: the state after the last completed epoch, and the model it delivers.
LAST = "last.npz"
BEST = "best.npz"


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


class DuplicateTrial(SurplusTrial):
    """Another trial already continues the same cut-off trial."""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def checkpoint_dir(root: Path, study_name: str, number: int) -> Path:
    return study_folder(root, study_name) / f"trial-{number:04d}"


class Objective:
    def __init__(
        self, config: SweepConfig, sets: Sets, root: Path, log: Callable[[str], None] = print
    ) -> None:
        self.config = config
        self.sets = sets
        self.root = root
        self.log = log

    def __call__(self, trial: optuna.Trial) -> float:
        # First of all: until a trial names its process, a restarted worker cannot tell that
        # the trial is dead and leaves it to the heartbeat's grace period.
        trial.set_user_attr("worker", liveness.worker_id())
        try:
            self._refuse_surplus(trial)
            train_config = suggest(trial, self.config)
            folder = checkpoint_dir(self.root, trial.study.study_name, trial.number)
            last = folder / LAST
            trial.set_user_attr("checkpoint", str(last))
            with warnings.catch_warnings():
                # A trial restarted from scratch reports epochs its dead predecessor reported
                # (the same values: training is deterministic); Optuna keeps the first.
                warnings.filterwarnings("ignore", message=".*is already reported")
                return self._train(trial, train_config, folder, last)
        except KeyboardInterrupt:
            # The epoch in progress is abandoned; the checkpoint of the last completed one
            # stays, and the next run continues from it (sweep.recovery).
            trial.set_user_attr("stop_reason", STOP_INTERRUPTED)
            raise
        except OSError as exc:
            # Not the trial's fault (a full disk, most often): the sweep stops, and the next
            # run continues the trial from its last checkpoint.
            trial.set_user_attr("stop_reason", STOP_CHECKPOINT_WRITE)
            raise CheckpointWriteError(
                f"cannot write checkpoint {exc.filename or self.root}: {exc.strerror or exc}; "
                f"trial {trial.number} is stopped and continues from its last checkpoint when "
                "you run the same command again"
            ) from None

    def _train(self, trial: optuna.Trial, train_config: object, folder: Path, last: Path) -> float:
        trial.set_user_attr("method", self.config.method)
        training = self._start(trial, train_config)
        started = time.perf_counter() - sum(r.seconds for r in training.state.history)
        if training.state.history:
            # Continued: the dead run may have been cut off right after judging its last epoch.
            verdict = self._judge(trial, training.state)
            if verdict.stop:
                self.log(f"trial {trial.number} [{verdict.verdict}] {verdict.reason}")
                self._prune(trial, training, folder, started, verdict)
        while not training.finished:
            report = training.run_epoch()
            methods.save(training.state, last)
            self._record_epoch(trial, training.state)
            verdict = self._judge(trial, training.state)
            if not self.config.quiet:
                self.log(
                    f"trial {trial.number} epoch {report.epoch}/{self.config.epochs} "
                    f"lr {report.lr:.2e} online loss {report.online_loss:.4f} "
                    f"train MSE {report.train_mse:.4f} val MSE {report.val_mse:.4f} "
                    f"[{verdict.verdict}] {report.seconds:.1f}s"
                )
            if verdict.stop:
                self._prune(trial, training, folder, started, verdict)
        record_diagnosis(trial, self._diagnose(training.state))
        return self._finish(trial, training, folder, started, training.state.stop_reason or "")

    def _prune(
        self,
        trial: optuna.Trial,
        training: methods.Run,
        folder: Path,
        started: float,
        verdict: Diagnosis,
    ) -> NoReturn:
        record_diagnosis(trial, verdict)
        self._finish(trial, training, folder, started, STOP_PRUNED)
        raise optuna.TrialPruned(verdict.reason)

    def _refuse_surplus(self, trial: optuna.Trial) -> None:
        """Refuse a trial the study does not need: a second copy of one cut-off trial, or one
        beyond ``--trials`` counting the finished trials and those that started running
        before this one in live processes."""
        trials = trial.study.get_trials(deepcopy=False)
        me = next(t for t in trials if t.number == trial.number)
        parent = me.user_attrs.get("continues_trial")
        if parent is not None and any(
            t.number < me.number
            and t.user_attrs.get("continues_trial") == parent
            and t.user_attrs.get("stop_reason") != STOP_SURPLUS
            for t in trials
        ):
            trial.set_user_attr("stop_reason", STOP_DUPLICATE)
            raise DuplicateTrial(f"trial {parent} is already continued by another trial")
        done, running = occupancy(trials, me)
        if done + running >= self.config.trials:
            trial.set_user_attr("stop_reason", STOP_SURPLUS)
            trial.study.stop()
            raise SurplusTrial(f"{done} finished and {running} running: nothing left to do")

    def _start(self, trial: optuna.Trial, config: object) -> methods.Run:
        """A fresh run, or the continuation of a dead or interrupted trial from the newest
        usable checkpoint of its line. A checkpoint that is unreadable or from another
        configuration is skipped with a warning (an older one, or a fresh run, is used):
        never a failed trial."""
        sets = (self.sets.train, self.sets.val, self.config.data)
        parent = trial.user_attrs.get("continues_trial")
        if parent is None:
            return methods.start(config, *sets)
        _remove_stale_temporaries(checkpoint_dir(self.root, trial.study.study_name, parent))
        stored = [
            trial.user_attrs.get("continues_checkpoint"),
            *trial.user_attrs.get("fallback_checkpoints", []),
        ]
        # Stored paths may be relative to another working directory: also look for the same
        # <study>/trial-NNNN/last.npz under this run's checkpoint folder.
        paths = [Path(c) for c in stored if c]
        moved = [self.root.joinpath(*p.parts[-3:]) for p in paths]
        candidates = list(dict.fromkeys(p.resolve() for p in [*paths, *moved]))
        state, problems = _newest_state(candidates, config, self.config.method)
        for problem in problems:
            self.log(f"warning: trial {trial.number}: skipping checkpoint {problem}")
        if state is None:
            if problems or trial.user_attrs.get("curve_val_mse"):
                # It had finished epochs (inherited curve), so it had a checkpoint.
                self.log(f"warning: trial {trial.number}: no usable checkpoint of trial "
                         f"{parent}; it starts again from scratch")  # fmt: skip
            else:
                self.log(f"trial {trial.number}: trial {parent} starts again from scratch "
                         "(it was cut off before its first checkpoint)")  # fmt: skip
            return methods.start(config, *sets)
        trial.set_user_attr("continued_from", parent)
        self.log(f"trial {trial.number}: continuing trial {parent} from epoch {state.epoch}")
        # The dead trial may have checkpointed epochs it did not live to report: report them
        # now, so the learning curve has no gap (values already inherited are skipped).
        for r in state.history:
            trial.report(r.val_mse, r.epoch)
        if len(trial.user_attrs.get("curve_val_mse", [])) != state.epoch:
            self._record_epoch(trial, state)
        return methods.resume(state, *sets)

    def _record_epoch(self, trial: optuna.Trial, state: Any) -> None:
        for name in CURVES:
            trial.set_user_attr(f"curve_{name}", [_num(getattr(r, name)) for r in state.history])
        if self.config.method == "clock":  # the prefix length T says where the growth stands
            trial.set_user_attr("curve_prefix", [r.prefix for r in state.history])
        trial.report(state.history[-1].val_mse, state.history[-1].epoch)

    def _diagnose(self, state: Any) -> Diagnosis:
        """The rules over the judged epochs (the clock method's grow stage is not judged: its
        honest MSE is meant to swing while the prefix grows)."""
        values = {r.epoch: r.val_mse for r in state.history}
        return diagnose_from(values, judge_from_step(self.config))

    def _judge(self, trial: optuna.Trial, state: Any) -> Diagnosis:
        last = state.history[-1]
        if last.stop_reason == STOP_NON_FINITE:
            return Diagnosis(
                "non_finite", last.epoch, ACTIONS["non_finite"],
                f"non-finite loss or gradient in epoch {last.epoch}; the bad step was not applied",
            )  # fmt: skip
        if trial.should_prune():
            return self._diagnose(state)
        return diagnose([])

    def _finish(
        self, trial: optuna.Trial, training: methods.Run, folder: Path, started: float, stop: str
    ) -> float:
        """Evaluate the best checkpoint (the model this trial delivers) on every set."""
        state = training.state
        weights = state.best_weights if state.best_weights is not None else state.weights
        train = training.evaluate(self.sets.train, weights)
        val = training.evaluate(self.sets.val, weights)
        test = training.evaluate(self.sets.test, weights)
        best_path = folder / BEST
        meta = {"train_mse": train.mse, "val_mse": val.mse, "test_mse": test.mse,
                "epoch": methods.best_epoch(state) or state.epoch}  # fmt: skip
        save_model(weights, state.config, meta, best_path)
        attrs = {
            "train_mse": _num(train.mse),
            "val_mse": _num(val.mse),
            "test_mse": _num(test.mse),
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
            "engine": getattr(state.config, "engine", "torch"),
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        self.log(
            f"trial {trial.number} done ({stop}): {describe(state.config)} epochs {state.epoch} "
            f"train MSE {train.mse:.4f} val MSE {val.mse:.4f} test MSE {test.mse:.4f} "
            f"tier {attrs['tier']}"
            + ("  [at the predict-zero floor]" if attrs["at_floor"] else "")
        )
        return val.mse


def _newest_state(paths: list[Path], config: object, method: str) -> tuple[Any | None, list[str]]:
    """The checkpoint with the most epochs among ``paths`` that loads and matches ``config``;
    also what was wrong with the others (a file that is not there is no problem: its trial
    was cut off before its first checkpoint)."""
    best: Any | None = None
    problems = []
    for path in paths:
        if not path.exists():
            continue
        try:
            state = methods.load(path, method)
            if hasattr(config, "engine"):
                # Both engines compute the same run: a checkpoint of either continues in this
                # run's engine.
                state = replace(state, config=replace(state.config, engine=config.engine))
            if state.config != config:
                raise CheckpointError(f"{path}: made with another configuration")
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if best is None or state.epoch > best.epoch:
            best = state
    return best, problems


def _remove_stale_temporaries(folder: Path) -> None:
    """A process killed while writing a checkpoint leaves its temporary file behind."""
    for tmp in folder.glob("*.tmp"):
        tmp.unlink(missing_ok=True)


def judge_from_step(config: SweepConfig) -> int:
    """First epoch the divergence rules judge: all for l1, the fine-tune stage for clock."""
    return config.grow_epochs + 1 if config.method == "clock" else 0


def describe(config: object) -> str:
    if hasattr(config, "lr"):
        return f"lr {config.lr:.2e}"
    return (
        f"clock lr scale {config.lr_scale:.2e} threshold {config.growth_threshold:.3g} "
        f"realisations {config.realisations} balanced {config.balanced} seed {config.seed}"
    )


def per_freq_attr(freqs: tuple[float, ...], values: tuple[float, ...]) -> dict[str, float | None]:
    return {f"{f:g}Hz": _num(v) for f, v in zip(freqs, values, strict=True)}


def _num(x: float) -> float | None:
    """JSON (and so Optuna's user attributes) has no NaN or Inf: store them as null."""
    return x if math.isfinite(x) else None
