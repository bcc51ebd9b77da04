"""The Optuna objective: one trial = one training run of the sweep's method, through the
``model.method.Method`` interface (it never asks which method it holds)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.exceptions import UpdateFinishedTrialError

from model.method import STOP_NON_FINITE, Run, State
from sweep import records as rec
from sweep.admission import refuse_surplus
from sweep.continuation import remove_stale_temporaries, start_or_continue
from sweep.delivery import Sets, deliver
from sweep.leaders import lead_check
from sweep.pruner import diagnose_all
from sweep.rules.criteria import mse_text
from sweep.rules.divergence import Diagnosis, diagnose, non_finite_step
from sweep.settings import SweepConfig
from sweep.space import suggest
from sweep.store import fencing, liveness, optuna_private
from sweep.store.artifact_store import ArtifactWriteError
from sweep.store.recovery import CheckpointWriteError


class Objective:
    def __init__(
        self,
        config: SweepConfig,
        sets: Sets,
        root: Path,
        log: Callable[[str], None] = print,
        store: FileSystemArtifactStore | None = None,
    ) -> None:
        """``store``: where each trial's delivered model is attached (None: not attached)."""
        self.config = config
        self.store = store
        self.method = config.training_method
        self.sets = sets
        self.root = root
        self.log = log

    def __call__(self, trial: optuna.Trial) -> float:
        # First of all: until a trial names its process, a restarted worker cannot tell that
        # the trial is dead and leaves it to the heartbeat's grace period.
        trial.set_user_attr(rec.WORKER, liveness.worker_id())
        folder = rec.trial_folder(self.root, trial.study.study_name, trial.number)
        try:
            refuse_surplus(trial, self.config.trials)
            train_config = suggest(trial, self.method, self.config.settings)
            trial.set_user_attr(rec.CHECKPOINT, str(folder / rec.LAST))
            with warnings.catch_warnings():
                # A trial restarted from scratch reports epochs its dead predecessor reported
                # (the same values: training is deterministic); Optuna keeps the first.
                warnings.filterwarnings("ignore", message=".*is already reported")
                value = self._train(trial, train_config, folder)
            fencing.check(trial)  # its end is told next: not for a trial taken over meanwhile
            return value
        except UpdateFinishedTrialError:
            # Optuna refused a write: the trial was ended by another process (a takeover
            # while this one was stopped, sweep.store.fencing), said in one line.
            fencing.check(trial)
            raise
        except KeyboardInterrupt:
            # The epoch in progress is abandoned; the checkpoint of the last completed one
            # stays, and the next run continues from it (sweep.store.recovery). A write cut off at
            # any moment (even inside mkstemp, before it could clean up) leaves no temporary.
            remove_stale_temporaries(folder)
            trial.set_user_attr(rec.STOP_REASON, rec.STOP_INTERRUPTED)
            raise
        except OSError as exc:
            # Taken over while this worker was stopped, its half-written checkpoint was
            # removed by the worker that continues it: that is no full disk.
            fencing.check(trial)
            # Not the trial's fault (a full disk, most often): the sweep stops, and the next
            # run continues the trial from its last checkpoint. The message names the folder
            # that failed: the artifact folder's error once blamed the checkpoint folder.
            trial.set_user_attr(rec.STOP_REASON, rec.STOP_CHECKPOINT_WRITE)
            what = ("to the artifact folder" if isinstance(exc, ArtifactWriteError)
                    else "checkpoint")  # fmt: skip
            raise CheckpointWriteError(
                f"cannot write {what} {exc.filename or self.root}: {exc.strerror or exc}; "
                f"trial {trial.number} is stopped and continues from its last checkpoint when "
                "you run the same command again"
            ) from None

    def _train(self, trial: optuna.Trial, train_config: object, folder: Path) -> float:
        trial.set_user_attr(rec.METHOD, self.method.name)
        sets = (self.sets.train, self.sets.val, self.config.data)
        run = start_or_continue(trial, self.method, train_config, sets, self.root, self.log,
                                self.config.settings.stall_check, lead_check(trial))  # fmt: skip
        started = time.perf_counter() - sum(r.seconds for r in run.state.history)
        if run.state.history:
            self._continued(trial, run.state)
            # The dead run may have been cut off right after judging its last epoch.
            verdict = self._judge(trial, run.state)
            if verdict.stop:
                self.log(f"trial {trial.number} [{verdict.verdict}] {verdict.reason}")
                self._prune(trial, run, folder, started, verdict)
        most = getattr(train_config, "epochs", self.config.epochs)
        while not run.finished:
            report = run.run_epoch()
            fencing.check(trial)  # a worker that took it over continues from the last one
            self.method.save(run.state, folder / rec.LAST)
            self._record_epoch(trial, run.state)
            verdict = self._judge(trial, run.state)
            if not self.config.quiet:
                extra = self.method.progress(train_config, report)
                step = self.method.step_text(report)
                self.log(
                    f"trial {trial.number} epoch {report.epoch}/{most} "
                    + (f"{step} " if step else "")
                    + f"online loss {report.online_loss:.4f} "
                    f"train MSE {mse_text(report.train_mse)} val MSE {mse_text(report.val_mse)} "
                    f"[{verdict.verdict}] {report.seconds:.1f}s" + (f" {extra}" if extra else "")
                )
            if verdict.stop:
                self._prune(trial, run, folder, started, verdict)
        verdict = self._diagnose(trial, run.state)
        return self._deliver(trial, run, folder, started, run.state.stop_reason or "", verdict)

    def _continued(self, trial: optuna.Trial, state: State) -> None:
        """The dead trial may have checkpointed epochs it did not live to report: report them
        now, so the learning curve has no gap (values already inherited are skipped)."""
        for r in state.history:
            trial.report(r.val_mse, r.epoch)
        if len(rec.curve(optuna_private.frozen(trial), rec.VAL_MSE_CURVE)) != state.epoch:
            self._record_epoch(trial, state)

    def _prune(
        self, trial: optuna.Trial, run: Run, folder: Path, started: float, verdict: Diagnosis
    ) -> NoReturn:
        self._deliver(trial, run, folder, started, rec.STOP_PRUNED, verdict)
        raise optuna.TrialPruned(verdict.reason)

    def _deliver(self, trial: optuna.Trial, run: Run, folder: Path, started: float, stop: str,
                 verdict: Diagnosis) -> float:  # fmt: skip
        return deliver(trial, self.method, run, self.sets, self.config.data, folder, started,
                       stop, verdict, self.store, self.log)  # fmt: skip

    def _record_epoch(self, trial: optuna.Trial, state: State) -> None:
        names = (*rec.CURVES, *self.method.curves)
        curves = {n: [_curve_value(getattr(r, n)) for r in state.history] for n in names}
        # A system attribute: optuna-dashboard draws every user attribute on one line, and
        # this one, thousands of characters long, would run the trial's note off the window.
        optuna_private.set_trial_system_attr(trial, rec.CURVES_KEY, curves)
        trial.report(state.history[-1].val_mse, state.history[-1].epoch)

    def _diagnose(self, trial: optuna.Trial, state: State) -> Diagnosis:
        """What the pruner decides on, with its reason: the stall rule over a growing prefix,
        the plan's rules over the epochs the method has them judge."""
        values = {r.epoch: r.val_mse for r in state.history}
        judged_from = self.method.judged_from(self.config.settings)
        grown = self.config.grown_at
        return diagnose_all(values, optuna_private.frozen(trial), judged_from, grown)

    def _judge(self, trial: optuna.Trial, state: State) -> Diagnosis:
        last = state.history[-1]
        if last.stop_reason == STOP_NON_FINITE:
            return non_finite_step(last.epoch)
        if trial.should_prune():
            return self._diagnose(trial, state)
        return diagnose([])


def _curve_value(x: object) -> object:
    if isinstance(x, tuple | list):
        return [_curve_value(v) for v in x]
    return rec.num(x) if isinstance(x, float) else x
