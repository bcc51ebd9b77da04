"""Evaluate a finished trial's model on a freshly generated set with any noise seed, so anyone
can check that a result is not tied to the seeds it was selected on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

from model.checkpoint import CheckpointError
from model.data import DataConfig, make_set
from model.delivered import load_model
from model.kernels import evaluate
from model.params import Evaluation
from sweep.identity import stored_data
from sweep.report.artifacts import ArtifactError, resolve_checkpoint


class EvaluationError(Exception):
    """A trial that cannot be evaluated (unknown, unfinished, or its model file is unusable)."""


@dataclass(frozen=True)
class TrialEvaluation:
    number: int
    seed: int
    checkpoint: str
    frequencies: tuple[float, ...]
    result: Evaluation


def data_config_of(study: optuna.Study) -> DataConfig:
    """The data the study was run on, from its recorded settings."""
    try:
        return stored_data(study)[0]
    except ValueError as exc:
        raise EvaluationError(f"cannot rebuild the study's data: {exc}") from None


def evaluate_trial(
    study: optuna.Study, number: int, seed: int, base: Path | None = None
) -> TrialEvaluation:
    """``base``: the database's folder, where relative checkpoint paths are also looked for."""
    if seed < 0:
        raise EvaluationError(f"--seed must be >= 0, got {seed}")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise EvaluationError(f"study {study.study_name!r} has no trial {number}")
    try:
        path = resolve_checkpoint(trials[number], base)
        weights, _, _ = load_model(path)
    except (ArtifactError, CheckpointError) as exc:
        raise EvaluationError(f"trial {number}: cannot load its model: {exc}") from None
    data_config = data_config_of(study)
    data = make_set(seed, data_config)
    result = evaluate(weights, data)
    return TrialEvaluation(number, seed, str(path), data_config.frequencies, result)


def render(ev: TrialEvaluation) -> str:
    per = "  ".join(
        f"{f:g} Hz {v:.5f}" for f, v in zip(ev.frequencies, ev.result.per_freq, strict=True)
    )
    return (
        f"trial {ev.number}, noise seed {ev.seed}: honest MSE {ev.result.mse:.5f}\n"
        f"per frequency: {per}\n"
        f"(model: {ev.checkpoint}; frozen weights, state reset at each block start)"
    )
