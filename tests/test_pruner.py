from __future__ import annotations

import math

import optuna
import pytest

from sweep.pruner import DivergencePruner, diagnose_trial

PERSON = [0.2847, 0.4058, 0.43, 0.45, 0.4580]
HEALTHY = [0.3 * 0.85**k for k in range(30)]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _should_prune_per_step(
    pruner: DivergencePruner, losses: list[float], first_step: int = 1
) -> list[bool]:
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    flags = []
    for step, loss in enumerate(losses, start=first_step):
        trial.report(loss, step)
        flags.append(trial.should_prune())
    return flags


@pytest.mark.parametrize(
    ("n_warmup_steps", "losses", "pruned_steps"),
    [
        (0, PERSON, [2, 3, 4, 5]),
        (0, HEALTHY, []),
        (0, [0.5] * 16, [15, 16]),
        (0, [0.3, 0.25, 0.2, math.nan, 0.1], [4, 5]),
        (4, PERSON, [4, 5]),  # warm-up delays the verdict; it does not forget it
        (10, PERSON, []),
    ],
)
def test_pruned_steps(n_warmup_steps: int, losses: list[float], pruned_steps: list[int]) -> None:
    flags = _should_prune_per_step(DivergencePruner(n_warmup_steps), losses)
    assert [step for step, flag in enumerate(flags, start=1) if flag] == pruned_steps


def test_step_zero_is_judged() -> None:
    # `if step:` would skip step 0; a curve reported from step 0 still prunes at its jump.
    assert _should_prune_per_step(DivergencePruner(), PERSON[:2], first_step=0) == [False, True]


def test_no_report_never_prunes() -> None:
    study = optuna.create_study(pruner=DivergencePruner())
    assert not study.ask().should_prune()


@pytest.mark.parametrize("bad", [-1, -10])
def test_invalid_warmup_names_the_value(bad: int) -> None:
    with pytest.raises(ValueError, match=f"n_warmup_steps={bad}"):
        DivergencePruner(n_warmup_steps=bad)


def test_diagnose_trial_reads_steps_in_order() -> None:
    frozen = optuna.trial.create_trial(
        value=0.458, intermediate_values={2: 0.4058, 1: 0.2847, 3: 0.43}
    )
    d = diagnose_trial(frozen)
    assert (d.verdict, d.epoch) == ("jump", 2)
