"""The sweep against the success criteria: data collected by a pure function, then printed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import optuna
from optuna.storages import BaseStorage

from model import registry
from sweep import records as rec
from sweep.identity import stored_floor, stored_method
from sweep.rules.criteria import TIERS, TierGap, at_floor, gaps
from sweep.store.recovery import FINISHED
from sweep.store.storage import open_storage
from sweep.trial_record import TrialRecord
from sweep.trial_record import read as read_record

FINISHED_NAMES = tuple(s.name for s in FINISHED)
CONTINUED = "CONTINUED"
"""The state a report gives a complete trial whose run a later one polished on as the study's
leader (``records.LEADS_ON``): that one's row is the run's, so it is counted once."""


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    verdict: str | None
    epochs: int | None
    train_mse: float | None
    val_mse: float | None
    test_mse: float | None
    test_train_ratio: float | None
    tier: str | None
    best_online_loss: float | None
    stop_reason: str | None
    continued_from: int | None
    method: str = registry.DEFAULT
    params: dict | None = None
    verdict_epoch: int | None = None
    attempts: int | None = None
    """Initial weights tried, for a method that starts a stalled run over (None: not
    recorded)."""
    restart_epochs: tuple[int, ...] = ()
    """The epochs at which those attempts were given up as stalled."""
    tuned: bool = False
    """Whether it reached its full-length stage (the epochs the plan's rules judge)."""
    delivered_stage: str | None = None
    """The stage of the epoch that gave the delivered weights (None: one stage only)."""
    stage_seconds: tuple[tuple[str, float], ...] = ()
    """Seconds of training per stage, in the order the stages ran."""
    leading_seconds: float = 0.0
    """Seconds of the epochs it ran only because it led its study (past its stage's goal)."""


@dataclass(frozen=True)
class MethodRow:
    """One study of the same storage, for the methods side by side."""

    study: str
    method: str
    finished: int
    best: TrialRow | None


class Ties(NamedTuple):
    """The trials whose validation MSE is within the noise level of the best one's."""

    noise: float
    """The spread (max - min) of validation MSE over the trials at the floor."""
    over: int
    """How many trials at the floor that spread is taken over."""
    numbers: tuple[int, ...]
    """The tied trials, best first (the best among them)."""
    spread: float
    """How far apart the tied trials are."""


@dataclass(frozen=True)
class Summary:
    study_name: str
    rows: tuple[TrialRow, ...]
    best: TrialRow | None
    standing: tuple[TierGap, ...]
    notes: tuple[str, ...]
    floor: float
    """The best honest MSE of a model that cannot tell time on this study's data."""
    method: str = registry.DEFAULT
    methods: tuple[MethodRow, ...] = ()
    ties: Ties | None = None


def trial_row(t: optuna.trial.FrozenTrial) -> TrialRow:
    """A trial as the report reads it: what it delivered (its record), its verdict and
    attempts (its curves), and how it came about."""
    d = read_record(t) or TrialRecord()
    a = t.user_attrs  # how it came about, which its run records before any delivery
    online = [v for v in rec.curve(t, rec.ONLINE_LOSS) if v is not None]
    attempt = rec.curve(t, rec.ATTEMPT)
    restarted = rec.curve(t, rec.RESTARTED)
    stages = rec.curve(t, rec.STAGE)
    return TrialRow(
        number=t.number,
        state=t.state.name,
        verdict=d.verdict,
        epochs=d.epochs or len(rec.curve(t, rec.VAL_MSE_CURVE)) or None,
        train_mse=d.train_mse,
        val_mse=d.val_mse,
        test_mse=d.test_mse,
        test_train_ratio=d.test_train_ratio,
        tier=d.tier,
        best_online_loss=min(online) if online else None,
        stop_reason=d.stop_reason,
        continued_from=a.get(rec.CONTINUED_FROM),
        method=a.get(rec.METHOD, registry.DEFAULT),
        params=dict(t.params),
        verdict_epoch=d.verdict_epoch,
        attempts=max(attempt) + 1 if attempt else None,
        restart_epochs=tuple(i + 1 for i, r in enumerate(restarted) if r),
        tuned=any(rec.curve(t, rec.JUDGED)),
        delivered_stage=stages[d.best_epoch - 1]
        if d.best_epoch and d.best_epoch <= len(stages)
        else None,
        stage_seconds=_stage_seconds(stages, rec.curve(t, rec.SECONDS)),
        leading_seconds=_leading_seconds(rec.curve(t, rec.LEADING), rec.curve(t, rec.SECONDS)),
    )


def polished_on(trials: Sequence[optuna.trial.FrozenTrial]) -> set[int]:
    """The trials whose run a complete later trial polished on as the study's leader: that
    one holds the whole run (its curve starts with theirs), so it alone stands for it."""
    complete = (t for t in trials if t.state == optuna.trial.TrialState.COMPLETE)
    return {t.user_attrs[rec.LEADS_ON] for t in complete if rec.LEADS_ON in t.user_attrs}


def trial_rows(trials: Sequence[optuna.trial.FrozenTrial]) -> tuple[TrialRow, ...]:
    """Every trial's row; a run polished on by a complete later trial is that trial's row,
    its earlier one ``CONTINUED``."""
    done = polished_on(trials)
    rows = (trial_row(t) for t in trials)
    return tuple(replace(r, state=CONTINUED) if r.number in done else r for r in rows)


def _leading_seconds(leading: list, seconds: list) -> float:
    """Seconds of the epochs that ran only because the one before led the study."""
    return sum(s or 0.0 for led, s in zip(leading, seconds[1:], strict=False) if led)


def _stage_seconds(stages: list, seconds: list) -> tuple[tuple[str, float], ...]:
    spent: dict[str, float] = {}
    for stage, s in zip(stages, seconds, strict=False):
        if stage is not None and s is not None:
            spent[stage] = spent.get(stage, 0.0) + s
    return tuple(spent.items())


def notes_for(rows: tuple[TrialRow, ...], best: TrialRow | None, floor: float
              ) -> tuple[str, ...]:  # fmt: skip
    """Plain sentences about what the numbers mean; the floor and online-loss caveats."""
    notes: list[str] = []
    scored = [r for r in rows if r.val_mse is not None]
    method = registry.get(best.method) if best is not None else None
    if best is not None and method is not None and at_floor(best.val_mse, floor):
        all_there = all(at_floor(r.val_mse, floor) for r in scored)
        who = "Every trial is" if all_there else "The best trial is"
        notes.append(
            f"{who} at the predict-zero floor: the best honest validation MSE is "
            f"{best.val_mse:.4f}, and the best a model that cannot tell time can score on this "
            f"data is {floor:.4f} (each block's mean; over whole periods that is 0.5, what "
            "predicting 0 scores). " + method.reporting.at_floor_advice
        )
    if method is not None and method.reporting.disclosure:
        notes.append(method.reporting.disclosure)
    for r in scored:
        if r.best_online_loss is None or r.train_mse is None:
            continue
        if not registry.get(r.method).reporting.online_loss_is_comparable:
            continue
        for t in reversed(TIERS):  # the loosest tier the online loss would meet
            if r.best_online_loss < t.max_train <= r.train_mse:
                notes.append(
                    f"Trial {r.number}: its online training loss reached "
                    f"{r.best_online_loss:.4f}, "
                    f"under the {t.name} tier's train limit ({t.max_train}), but its honest "
                    f"train MSE is {r.train_mse:.4f}. The online loss is taken while the weights "
                    "follow the target step by step; it is not the model's MSE."
                )
                break
    return tuple(notes)


def noise_level(val_mses: Sequence[float | None], floor: float) -> tuple[float, int] | None:
    """The spread (max - min) of the validation MSEs at the predict-zero floor, and how many
    there are; None with fewer than two. Trials at the floor all learnt the same thing
    (nothing), so how far apart their scores fall is the noise of the measurement."""
    at = [v for v in val_mses if at_floor(v, floor) and math.isfinite(v)]
    if len(at) < 2:
        return None
    return max(at) - min(at), len(at)


def ties_for(val_mses: Sequence[tuple[int, float]], floor: float) -> Ties | None:
    """(trial number, validation MSE) of the finished trials: the ones within the noise level
    of the lowest, when there are two or more of them."""
    level = noise_level([v for _, v in val_mses], floor)
    if level is None:
        return None
    noise, over = level
    ranked = sorted(val_mses, key=lambda nv: (nv[1], nv[0]))
    best = ranked[0][1]
    tied = [(n, v) for n, v in ranked if v - best <= noise]
    if len(tied) < 2:
        return None
    return Ties(noise, over, tuple(n for n, _ in tied), tied[-1][1] - best)


def ties_text(ties: Ties, scored: int) -> str:
    """One plain sentence: the best trial is named, but it is no better than its ties."""
    who = (f"All {scored} finished trials" if len(ties.numbers) == scored
           else f"The best {len(ties.numbers)} trials")  # fmt: skip
    numbers = ", ".join(f"#{n}" for n in ties.numbers)
    return (
        f"{who} ({numbers}) differ in validation MSE by at most {ties.spread:.2g}, within the "
        f"noise level of {ties.noise:.2g} (the spread over the {ties.over} trials at the "
        f"predict-zero floor): these differences are noise, so #{ties.numbers[0]} is no better "
        "than the others."
    )


def sibling_studies(study: optuna.Study, storage: str | BaseStorage) -> list[optuna.Study]:
    """The other studies in ``storage``, the one ``study`` was loaded from (a URL or the
    storage object): another method's sweep, say."""
    if isinstance(storage, str):
        storage = open_storage(storage, must_exist=True)  # one connection for every sibling
    names = optuna.study.get_all_study_names(storage)
    return [
        optuna.load_study(study_name=n, storage=storage) for n in names if n != study.study_name
    ]


def method_rows(studies: list[optuna.Study]) -> tuple[MethodRow, ...]:
    """Each study's best trial (by honest validation MSE), for comparing methods."""
    out = []
    for s in studies:
        summary = collect(s)
        done = sum(r.state in FINISHED_NAMES for r in summary.rows)
        out.append(MethodRow(s.study_name, summary.method, done, summary.best))
    return tuple(out)


def best_row(rows: tuple[TrialRow, ...]) -> TrialRow | None:
    """The one definition of the best trial, shared by the report, ``eval``, the attached
    model and optuna-dashboard: the lowest honest validation MSE among complete trials (what
    Optuna's ``study.best_trial`` is); while none is complete, among pruned ones (their best
    checkpoints are real models)."""
    scored = [r for r in rows if r.val_mse is not None and r.state in FINISHED_NAMES]
    complete = [r for r in scored if r.state == "COMPLETE"]
    return min(complete or scored, key=lambda r: r.val_mse) if scored else None


def collect(study: optuna.Study, others: list[optuna.Study] | None = None) -> Summary:
    """The summary of ``study``; with ``others`` (other studies of the same storage), the
    methods side by side too."""
    rows = trial_rows(study.get_trials(deepcopy=False))
    best = best_row(rows)
    floor = stored_floor(study)
    scored = [r for r in rows if r.val_mse is not None and r.state in FINISHED_NAMES]
    ties = ties_for([(r.number, r.val_mse) for r in scored], floor)
    standing: tuple[TierGap, ...] = ()
    if best is not None and best.train_mse is not None and best.test_mse is not None:
        standing = tuple(gaps(best.train_mse, best.test_mse))
    method = stored_method(study)
    methods = method_rows([study, *others]) if others else ()
    notes = notes_for(rows, best, floor)
    return Summary(study.study_name, rows, best, standing, notes, floor, method, methods, ties)


def axis_value(r: TrialRow) -> tuple[str, Any]:
    """The name of the trial's method's sweep axis and the trial's value on it (None: none)."""
    name = registry.get(r.method).reporting.axis
    return name, (r.params or {}).get(name)


def axis_text(r: TrialRow) -> str:
    """The trial's value on its method's sweep axis, named: "lr 1.50e-04", "seed 8607"."""
    name, value = axis_value(r)
    if value is None:
        return f"{name} -"
    return f"{name} {value:.2e}" if isinstance(value, float) else f"{name} {value}"
