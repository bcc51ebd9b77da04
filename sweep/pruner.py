"""A thin Optuna adapter over `sweep.rules.divergence`: prune a trial once its curve gets a
verdict.

The pruner is stateless: storage keeps no pruner state across a resume, so every decision is
derived again from the trial's reported values. Steps are read in step order and numbered as
epochs from 1, so with `trial.report(loss, epoch)` and epochs counted from 1 a diagnosis's epoch
is the step itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from optuna.pruners import BasePruner

from sweep import records as rec
from sweep.rules.divergence import Diagnosis, diagnose
from sweep.rules.stall import GrowEpoch, check_stalled, diagnose_grow

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial


class DivergencePruner(BasePruner):
    """Prune when the plan's Decision Matrix says stop (jump, diverging, oscillating, plateau,
    non-finite loss), or when a growing-prefix stage has stalled (``check_stalled``).

    A verdict is sticky: the first epoch at which a rule fires decides, so a trial that jumped
    during warm-up is pruned at the first step the pruner may act on, even if it recovered.

    Args:
        n_warmup_steps: steps below this are never pruned.
        judge_from_step: steps below this are not judged by the plan's rules (their values are
            left out of the curve the rules see), for a method whose early epochs are a
            different stage (a growing prefix, whose honest MSE is meant to swing). Those
            epochs are judged by the stall rule instead, from the curves the trial records
            (``records.PREFIX`` among them: any method that reports a prefix is judged so).
        full_length: the prefix at which a growing prefix is grown (``Method.grown_at``).
    """

    def __init__(
        self, n_warmup_steps: int = 0, judge_from_step: int = 0, full_length: int = 0
    ) -> None:
        if n_warmup_steps < 0:
            raise ValueError(
                f"Number of warmup steps cannot be negative but got {n_warmup_steps=}."
            )
        if judge_from_step < 0:
            raise ValueError(f"judge_from_step cannot be negative but got {judge_from_step=}.")
        self._n_warmup_steps = n_warmup_steps
        self._judge_from_step = judge_from_step
        self._full_length = full_length

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        if step < self._n_warmup_steps:
            return False
        # Optuna hands over the trial with its system attributes read from storage at this
        # moment: the curves of the epoch just reported are there (written before the report).
        return diagnose_all(
            trial.intermediate_values, trial, self._judge_from_step, self._full_length
        ).stop


def grow_epochs(trial: FrozenTrial, before_step: int) -> tuple[int, list[GrowEpoch]]:
    """(epochs before the current attempt, its grow epochs as the stall rule reads them), from
    the curves a trial records; no epochs for a trial that records no prefix (a method
    without a growing prefix), or whose last epoch ended an attempt (the method starts over
    by itself).
    A trial that records which epochs are judged has its grow epochs named by that curve;
    otherwise they are the epochs before ``before_step``."""
    prefix = rec.curve(trial, rec.PREFIX)
    per_freq = rec.curve(trial, rec.VAL_PER_FREQ)
    online = rec.curve(trial, rec.ONLINE_LOSS)
    norm = rec.curve(trial, rec.GRAD_NORM_MEAN)
    n = min(len(prefix), len(per_freq), len(online), len(norm))
    judged = rec.curve(trial, rec.JUDGED)
    restarted = rec.curve(trial, rec.RESTARTED)
    if len(judged) < n:  # recorded before attempts existed: one attempt, a fixed grow stage
        judged = [i >= before_step - 1 for i in range(n)]
    if len(restarted) < n:
        restarted = [False] * n
    first = max((i + 1 for i in range(n) if restarted[i]), default=0)
    if n and restarted[n - 1]:
        return first, []

    return first, [
        grow_epoch(prefix[i], per_freq[i], online[i], norm[i])
        for i in range(first, n)
        if not judged[i]
    ]


def grow_epoch(prefix: int, per_freq: Sequence[float | None], online: float | None,
               grad_norm: float | None) -> GrowEpoch:  # fmt: skip
    """What the stall rule reads of one grow epoch; a NaN (stored as JSON null) counts as not
    learnt."""

    def finite(x: float | None) -> float:
        return math.inf if x is None or math.isnan(x) else x

    return GrowEpoch(prefix, max(finite(v) for v in per_freq), finite(online), finite(grad_norm))


def stall_check(reports: Sequence[Any], full_length: int, last_grow_epoch: int) -> str | None:
    """``model.method.StallCheck``: the stall rule over a trainer's own reports of its current
    attempt's grow epochs, so a method starts an attempt over exactly where the pruner would
    stop it."""
    epochs = [grow_epoch(r.prefix, r.val_per_freq, r.online_loss, r.grad_norm_mean)
              for r in reports]  # fmt: skip
    return check_stalled(epochs, full_length, last_grow_epoch)


def judged_steps(values: dict[int, float], trial: FrozenTrial, from_step: int) -> set[int]:
    """The steps the plan's rules judge: those the trial's ``judged`` curve names (step =
    epoch = index + 1), else every step from ``from_step`` on."""
    judged = rec.curve(trial, rec.JUDGED)
    if judged:
        return {s for s in values if 1 <= s <= len(judged) and judged[s - 1]}
    return {s for s in values if s >= from_step}


def diagnose_all(
    values: dict[int, float], trial: FrozenTrial, judge_from_step: int, full_length: int
) -> Diagnosis:
    """The verdict on a trial so far: a stalled growing prefix first (its epochs come first),
    then the plan's rules over the epochs they judge."""
    before, grow = grow_epochs(trial, judge_from_step)
    stalled = diagnose_grow(grow, full_length, judge_from_step - 1, before) if grow else None
    steps = judged_steps(values, trial, judge_from_step)
    return stalled or diagnose_steps({s: values[s] for s in steps})


def diagnose_from(values: dict[int, float], from_step: int = 0) -> Diagnosis:
    """`diagnose` over the values at steps >= ``from_step``, in step order; the verdict's epoch
    is given as the step it fired at."""
    return diagnose_steps({s: v for s, v in values.items() if s >= from_step})


def diagnose_steps(values: dict[int, float]) -> Diagnosis:
    """`diagnose` over ``values`` in step order; the verdict's epoch is the step it fired at."""
    steps = sorted(values)
    d = diagnose([values[s] for s in steps])
    return d if d.epoch is None else replace(d, epoch=steps[d.epoch - 1])


def diagnose_trial(trial: FrozenTrial, from_step: int = 0) -> Diagnosis:
    """`diagnose` over the trial's intermediate values in step order."""
    return diagnose_from(trial.intermediate_values, from_step)
