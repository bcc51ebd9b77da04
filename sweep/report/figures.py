"""The data behind each figure of the HTML report, collected by pure functions.

Nothing here draws: `sweep.report.html` turns these tuples into plotly figures, and the tests
assert on the tuples (as optuna's own `_get_..._info` / `_get_..._plot` split does).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import optuna

from model import registry
from model.data import DataConfig, SignalSet, make_set, time_axis
from model.delivered import load_model
from model.kernels import predict
from model.params import score
from sweep import records as rec
from sweep.identity import stored_data
from sweep.report.artifacts import resolve_checkpoint
from sweep.report.summary import CONTINUED, Summary, TrialRow, polished_on
from sweep.rules.criteria import FLOOR_FRACTION, TIERS, Tier, TierGap, at_floor, mse_ratio
from sweep.trial_record import TrialRecord
from sweep.trial_record import read as read_record

#: Graph (4) shows this much of the test set: enough periods to read, few enough to see dots.
WINDOW_S = 1.0
DEFAULT_FREQ_HZ = 3.0


class SweepPoint(NamedTuple):
    number: int
    state: str
    x: float
    """The trial's value on its method's sweep axis (``Reporting.axis``)."""
    val_mse: float
    verdict: str | None
    tier: str | None


class SweepInfo(NamedTuple):
    """(1) the sweep axis (the learning rate, or the clock's seed) against final honest
    validation MSE."""

    points: tuple[SweepPoint, ...]
    tiers: tuple[Tier, ...]
    floor: float
    """The floor of the study's data (0.5 over whole periods)."""
    floor_from: float
    """Above this an MSE counts as "at the floor" (FLOOR_FRACTION of it)."""
    x_title: str
    """What x is (the method's ``Reporting.axis_title``)."""
    best: float | None = None
    """The best trial's validation MSE."""
    noise: float | None = None
    """The noise level of validation MSE (see ``sweep.report.summary.ties_for``), where known."""
    categorical: bool = False
    """The axis is a seed: seed 41 is no more like 42 than 7, so its values are categories,
    drawn in order of validation MSE (``categories``), not on a number line."""

    @property
    def categories(self) -> tuple[str, ...]:
        """The x values as category labels, best validation MSE first."""
        ordered = sorted(self.points, key=lambda p: (p.val_mse, p.number))
        return tuple(dict.fromkeys(axis_label(p.x) for p in ordered))


def axis_label(value: object) -> str:
    """A value of the sweep axis as a person reads it: a seed as an integer, a learning rate
    in scientific notation."""
    if isinstance(value, bool) or value is None:
        return "-"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                  and abs(value) >= 1):  # fmt: skip
        return str(int(value))
    return f"{value:.1e}" if isinstance(value, float) else str(value)


class Curve(NamedTuple):
    number: int
    state: str
    x: float | None
    """The trial's value on its method's sweep axis (``Reporting.axis``)."""
    verdict: str | None
    epochs: tuple[int, ...]
    val_mse: tuple[float | None, ...]
    online_loss: tuple[float | None, ...]
    prefix: tuple[float | None, ...] = ()
    """A growing prefix's length T after each epoch (empty for a method without one)."""
    stage: tuple[str | None, ...] = ()
    """The method's stage of each epoch (empty for a method of one stage)."""
    judged: tuple[bool | None, ...] = ()
    """Whether the plan's rules judge each epoch (empty: not recorded)."""
    attempt: tuple[int | None, ...] = ()
    """The attempt (initial weights) of each epoch, for a method that starts over (empty for
    other methods)."""
    delivered_attempt: int | None = None
    """The attempt whose weights the trial delivered (its best epoch's)."""


def delivered_mask(c: Curve) -> tuple[bool, ...]:
    """Per epoch, whether it belongs to the attempt the trial delivered: the curve a reader
    follows. Every epoch, for a trial of one attempt (or that does not record attempts)."""
    if c.delivered_attempt is None or not c.attempt:
        return (True,) * len(c.epochs)
    return tuple(a == c.delivered_attempt for a in _padded(list(c.attempt), len(c.epochs)))


class CurvesInfo(NamedTuple):
    """(2) honest validation MSE and online training loss per epoch, one curve per trial."""

    curves: tuple[Curve, ...]
    floor: float
    floor_from: float
    x_name: str
    """The sweep axis each curve's ``x`` holds (the method's ``Reporting.axis``)."""


class CriteriaInfo(NamedTuple):
    """(3) the best trial's train MSE, test MSE and their ratio against every tier."""

    number: int
    train_mse: float
    test_mse: float
    ratio: float
    standing: tuple[TierGap, ...]
    at_floor: bool = False
    """The best model sits at the predict-zero floor: test ~ train because both are ~0.5, so
    the ratio says nothing about generalising."""


class Panel(NamedTuple):
    freq: float
    time: np.ndarray
    target: np.ndarray
    output: np.ndarray


class PredictionInfo(NamedTuple):
    """(4) the model's output on the test set over the first ``window_s`` seconds: one
    frequency with the noisy mixed signal S behind it (``focus``, ``mixed``), and every
    frequency (``panels``)."""

    number: int
    window_s: float
    focus: Panel
    mixed: np.ndarray
    panels: tuple[Panel, ...]


class PerFreqInfo(NamedTuple):
    """(5) test MSE per frequency, beside what predicting 0 scores on the same samples."""

    number: int
    freqs: tuple[float, ...]
    mse: tuple[float, ...]
    zero_mse: tuple[float, ...]
    overall: float


def sweep_info(summary: Summary) -> SweepInfo:
    """The method's sweep axis (the learning rate, or the clock's seed) against
    validation MSE, per trial."""
    method = registry.get(summary.method)
    axis, title = method.reporting.axis, method.reporting.axis_title

    def x(r: TrialRow) -> float | None:
        return (r.params or {}).get(axis)

    points = tuple(
        SweepPoint(r.number, r.state, x(r), r.val_mse, r.verdict, r.tier)
        for r in summary.rows
        if x(r) is not None and r.val_mse is not None and r.state != CONTINUED  # one per run
    )
    best = summary.best.val_mse if summary.best is not None else None
    noise = summary.ties.noise if summary.ties is not None else None
    floor_from = FLOOR_FRACTION * summary.floor
    return SweepInfo(points, TIERS, summary.floor, floor_from, title, best, noise,
                     categorical=method.unordered_space)  # fmt: skip


def _padded(values: list, n: int) -> tuple:
    return tuple((list(values) + [None] * n)[:n])


def curves_info(trials: Iterable[optuna.trial.FrozenTrial], floor: float, axis: str) -> CurvesInfo:
    """Every trial that finished at least one epoch; a pruned trial's curve simply ends at
    the epoch it was stopped after. ``axis``: the parameter the sweep varies (the method's
    ``Reporting.axis``), which orders and colours the curves."""
    curves = []
    trials = list(trials)
    continued = polished_on(trials)  # its curve goes on as the later trial's: drawn once
    for t in trials:
        val = rec.curve(t, rec.VAL_MSE_CURVE)
        if t.number in continued:
            continue
        if not val:
            continue
        online = rec.curve(t, rec.ONLINE_LOSS)
        prefix = rec.curve(t, rec.PREFIX)
        stage = rec.curve(t, rec.STAGE)
        judged = rec.curve(t, rec.JUDGED)
        attempt = rec.curve(t, rec.ATTEMPT)
        delivered = read_record(t) or TrialRecord()
        best = delivered.best_epoch
        best_attempt = attempt[best - 1] if attempt and best and 0 < best <= len(attempt) else None
        curves.append(
            Curve(
                number=t.number,
                state=t.state.name,
                x=t.params.get(axis),
                verdict=delivered.verdict,
                epochs=tuple(range(1, len(val) + 1)),
                val_mse=tuple(val),
                online_loss=_padded(online, len(val)),
                prefix=_padded(prefix, len(val)) if prefix else (),
                stage=_padded(stage, len(val)) if stage else (),
                judged=_padded(judged, len(val)) if judged else (),
                attempt=_padded(attempt, len(val)) if attempt else (),
                delivered_attempt=best_attempt,
            )
        )
    return CurvesInfo(tuple(curves), floor, FLOOR_FRACTION * floor, x_name=axis)


def criteria_info(summary: Summary) -> CriteriaInfo | None:
    b = summary.best
    if b is None or b.train_mse is None or b.test_mse is None:
        return None
    # The stored ratio is null where it is infinite (JSON has no inf): recompute it.
    ratio = mse_ratio(b.train_mse, b.test_mse)
    return CriteriaInfo(
        b.number,
        b.train_mse,
        b.test_mse,
        ratio,
        summary.standing,
        at_floor(b.val_mse, summary.floor),
    )


def freq_index(freq: float, config: DataConfig) -> int:
    for i, f in enumerate(config.frequencies):
        if np.isclose(f, freq):
            return i
    known = ", ".join(f"{f:g}" for f in config.frequencies)
    raise ValueError(f"no {freq:g} Hz component in this study (its frequencies: {known} Hz)")


def _check_shape(outputs: np.ndarray, data: SignalSet) -> None:
    if outputs.shape != data.targets.shape:
        raise ValueError(f"outputs of shape {outputs.shape} for targets {data.targets.shape}")


def prediction_info(
    number: int,
    outputs: np.ndarray,
    data: SignalSet,
    config: DataConfig,
    freq: float = DEFAULT_FREQ_HZ,
    window_s: float = WINDOW_S,
) -> PredictionInfo:
    """``outputs``: the model's predictions on ``data``, shaped like its targets."""
    _check_shape(outputs, data)
    focus = freq_index(freq, config)
    n = max(1, min(config.samples, round(window_s * config.sample_rate)))
    t = time_axis(config)[:n]
    panels = tuple(
        Panel(f, t, data.targets[i, :n], outputs[i, :n]) for i, f in enumerate(config.frequencies)
    )
    return PredictionInfo(number, n / config.sample_rate, panels[focus], data.mixed[:n], panels)


def per_freq_info(
    number: int, outputs: np.ndarray, data: SignalSet, config: DataConfig
) -> PerFreqInfo:
    _check_shape(outputs, data)
    ev = score(outputs, data)
    zero = score(np.zeros_like(outputs), data)
    return PerFreqInfo(number, tuple(config.frequencies), ev.per_freq, zero.per_freq, ev.mse)


# The one impure step: the model a trial delivered, run on the study's own test set.


def trial_outputs(
    study: optuna.Study, number: int, base: Path | None = None
) -> tuple[np.ndarray, SignalSet, DataConfig]:
    """Load trial ``number``'s best checkpoint and predict the study's test set with it
    (compiled forward pass, no torch). Relative checkpoint paths are tried from the working
    folder, then from ``base``."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise ValueError(f"study {study.study_name!r} has no trial {number}")
    path = resolve_checkpoint(trials[number], base)
    config, seed = stored_data(study)
    data = make_set(seed, config)
    weights, _, _ = load_model(path)
    return predict(weights, data), data, config
