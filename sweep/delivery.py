"""A trial's end: its best checkpoint (the model it delivers) evaluated honestly on every set,
saved as ``best.npz``, and its numbers recorded on the trial."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna_dashboard import save_note

from model.data import DataConfig, SignalSet, make_set
from model.delivered import save_model
from model.method import Method, Run
from model.params import Weights
from sweep import records as rec
from sweep import trial_record
from sweep.identity import data_floor
from sweep.report.notes import TrialFacts, trial_note
from sweep.rules.criteria import at_floor, mse_ratio, mse_text, tier
from sweep.rules.divergence import Diagnosis
from sweep.settings import SweepConfig
from sweep.store import fencing


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


def deliver(
    trial: optuna.Trial,
    method: Method,
    run: Run,
    sets: Sets,
    data: DataConfig,
    folder: Path,
    started: float,
    stop: str,
    diagnosis: Diagnosis,
    store: FileSystemArtifactStore | None,
    log: Callable[[str], None],
) -> float:
    """Evaluate the best checkpoint on every set, save it, attach it to the trial (``store``),
    record its numbers, the verdict and the advice, and write the trial's note; returns the
    objective (its honest validation MSE)."""
    state, floor = run.state, data_floor(data)
    weights = state.best_weights if state.best_weights is not None else state.weights
    train, val = best_scores(run, sets, weights)
    test = run.evaluate(sets.test, weights)
    best_path = folder / rec.BEST
    meta = {"train_mse": train, "val_mse": val, "test_mse": test.mse,
            "epoch": state.best_epoch or state.epoch}  # fmt: skip
    fencing.check(trial)  # the delivered model, and the trial's record, are its owner's
    save_model(weights, state.config, meta, best_path)
    floor_reached = at_floor(val, floor)
    record = trial_record.TrialRecord(
        train_mse=train, val_mse=val, test_mse=test.mse,
        test_train_ratio=mse_ratio(train, test.mse),
        test_mse_per_freq=tuple(zip(data.frequencies, test.per_freq, strict=True)),
        tier=tier(train, test.mse), at_floor=floor_reached, epochs=state.epoch,
        best_epoch=meta["epoch"], stop_reason=stop,
        final_online_loss=state.history[-1].online_loss,
        wall_seconds=round(time.perf_counter() - started, 3),
        peak_rss_mb=round(peak_rss_mb(), 1), best_checkpoint=str(best_path),
        engine=method.engine(state.config),
        value_step=state.epoch + 1 if stop == rec.STOP_PRUNED else None,
        verdict=diagnosis.verdict, verdict_epoch=diagnosis.epoch, verdict_reason=diagnosis.reason,
        # At the floor the plan's row (say "increase LR") is not the advice: the data is the
        # cause. Nor is it for a run the method stopped for a reason of its own.
        action=(method.reporting.floor_action if floor_reached
                else method.reporting.stop_actions.get(stop, diagnosis.action)),
        plan_action=diagnosis.action,
    )  # fmt: skip
    trial_record.write(trial, record)
    if store is not None:
        # While the trial runs: Optuna refuses artifacts on a finished trial.
        upload_artifact(artifact_store=store, file_path=str(best_path), study_or_trial=trial)
    online = [r.online_loss for r in state.history if math.isfinite(r.online_loss)]
    delivered_by = method.delivered_by(state)
    trained = method.describe(state.config) + (f"; {delivered_by}" if delivered_by else "")
    if (leads_on := trial.user_attrs.get(rec.LEADS_ON)) is not None:
        trained += (f"; trial {leads_on} ran this run's epochs up to its goal, and this trial "
                    "went on with its polish as the study's leader")  # fmt: skip
    facts = TrialFacts(
        number=trial.number, method=method.name, trained=trained,
        disclosure=method.reporting.disclosure, record=record,
        best_online_loss=min(online) if online else None, floor=floor,
    )  # fmt: skip
    save_note(trial, trial_note(facts))
    if record.value_step is not None:
        # Last of all, just before the objective raises TrialPruned: Optuna makes this the
        # trial's value (rec.VALUE_STEP says why). A worker killed in between leaves a trial
        # that is continued, pruned again at the same epoch and reports the same value here.
        trial.report(val, record.value_step)
    log(
        f"trial {trial.number} done ({stop}): {_params(trial.params)} epochs "
        f"{state.epoch} train MSE {mse_text(train)} val MSE {mse_text(val)} test MSE "
        f"{mse_text(test.mse)} tier {record.tier}"
        + ("  [at the predict-zero floor]" if floor_reached else "")
    )
    return val


def best_scores(run: Run, sets: Sets, weights: Weights) -> tuple[float, float]:
    """The honest train and validation MSE of the delivered ``weights``. The best epoch
    evaluated exactly these weights on exactly these sets, so its report's numbers are taken
    (evaluating again gives the same bits and cost two full passes a trial); the sets are
    evaluated only when no epoch did (no best yet, or a score not recorded)."""
    state = run.state
    if state.best_weights is weights and 0 < state.best_epoch <= len(state.history):
        report = state.history[state.best_epoch - 1]
        if math.isfinite(report.train_mse) and math.isfinite(report.val_mse):
            return report.train_mse, report.val_mse
    return run.evaluate(sets.train, weights).mse, run.evaluate(sets.val, weights).mse


def _params(params: dict) -> str:
    """The trial's searched values, for its one-line summary (the note has the recipe)."""
    return ", ".join(f"{k} {v:.2e}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in sorted(params.items()))  # fmt: skip
