"""A method's search space (plain data from ``model``) as Optuna ``suggest_*`` calls: every
suggestion the sweep makes happens here."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning

from model.method import ChoiceParam, FloatParam, IntParam, Method, Param, Settings


def suggest_param(trial: optuna.Trial, p: Param) -> Any:
    if isinstance(p, FloatParam):
        return trial.suggest_float(p.name, p.low, p.high, log=p.log)
    if isinstance(p, IntParam):
        return trial.suggest_int(p.name, p.low, p.high)
    return trial.suggest_categorical(p.name, p.choices)


def suggest(trial: optuna.Trial, method: Method, settings: Settings) -> Any:
    """The training config of one trial, drawn in the order the method lists its space."""
    params = {p.name: suggest_param(trial, p) for p in method.search_space(settings)}
    return method.make_config(params, settings)


def lowest(space: tuple[Param, ...]) -> dict[str, Any]:
    """One valid point of a space (each range's low end, each first choice): what the
    settings are checked with before anything runs."""
    return {p.name: p.choices[0] if isinstance(p, ChoiceParam) else p.low for p in space}


def enqueue_first(study: optuna.Study, method: Method, settings: Settings) -> None:
    """A new study's first trial is the method's best measured point, where it names one."""
    first = method.first_params(settings)
    if first is not None and not study.get_trials(deepcopy=False):
        study.enqueue_trial(first, skip_if_exists=True)


def sampler(method: Method, seed: int) -> optuna.samplers.BaseSampler:
    """TPE where the method's space is ordered (the learning rate); for a space of seeds,
    Optuna's BruteForceSampler: every point once (not those finished or running in other
    workers), in an order drawn from ``seed``."""
    if not method.unordered_space:
        return optuna.samplers.TPESampler(seed=seed)
    with warnings.catch_warnings():  # experimental since Optuna 3.1; the warning only confuses
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.samplers.BruteForceSampler(seed=seed)
