"""A thin Optuna adapter over `sweep.divergence`: prune a trial once its curve gets a verdict.

The pruner is stateless: storage keeps no pruner state across a resume, so every decision is
derived again from the trial's reported values. Steps are read in step order and numbered as
epochs from 1, so with `trial.report(loss, epoch)` and epochs counted from 1 a diagnosis's epoch
is the step itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from optuna.pruners import BasePruner

from sweep import records as rec
from sweep.divergence import Diagnosis, diagnose

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial, Trial


class DivergencePruner(BasePruner):
    """Prune when the plan's Decision Matrix says stop (jump, diverging, oscillating, plateau,
    non-finite loss).

    A verdict is sticky: the first epoch at which a rule fires decides, so a trial that jumped
    during warm-up is pruned at the first step the pruner may act on, even if it recovered.

    Args:
        n_warmup_steps: steps below this are never pruned.
        judge_from_step: steps below this are not judged at all (their values are left out of
            the curve the rules see), for a method whose early epochs are a different stage:
            the clock method's growing prefix, whose honest MSE is meant to swing.
    """

    def __init__(self, n_warmup_steps: int = 0, judge_from_step: int = 0) -> None:
        if n_warmup_steps < 0:
            raise ValueError(
                f"Number of warmup steps cannot be negative but got {n_warmup_steps=}."
            )
        if judge_from_step < 0:
            raise ValueError(f"judge_from_step cannot be negative but got {judge_from_step=}.")
        self._n_warmup_steps = n_warmup_steps
        self._judge_from_step = judge_from_step

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        if step < self._n_warmup_steps:
            return False
        return diagnose_trial(trial, self._judge_from_step).stop


def diagnose_from(values: dict[int, float], from_step: int = 0) -> Diagnosis:
    """`diagnose` over the values at steps >= ``from_step``, in step order; the verdict's epoch
    is given as the step it fired at."""
    steps = sorted(s for s in values if s >= from_step)
    d = diagnose([values[s] for s in steps])
    return d if d.epoch is None else replace(d, epoch=steps[d.epoch - 1])


def diagnose_trial(trial: FrozenTrial, from_step: int = 0) -> Diagnosis:
    """`diagnose` over the trial's intermediate values in step order."""
    return diagnose_from(trial.intermediate_values, from_step)


def record_diagnosis(trial: Trial, diagnosis: Diagnosis, action: str | None = None) -> None:
    """Store the verdict on the trial, for reports and the dashboard: ``action`` is the
    tool's advice (by default the plan's), and the plan's own is kept beside it.

    Kept out of `prune`, which only sees a FrozenTrial copy and must not write to storage.
    """
    trial.set_user_attr(rec.VERDICT, diagnosis.verdict)
    trial.set_user_attr(rec.VERDICT_EPOCH, diagnosis.epoch)
    trial.set_user_attr(rec.ACTION, action or diagnosis.action)
    trial.set_user_attr(rec.PLAN_ACTION, diagnosis.action)
    trial.set_user_attr(rec.VERDICT_REASON, diagnosis.reason)
