"""What each method's sweep proposes: a searched seed is never proposed twice."""

from __future__ import annotations

import optuna
import pytest

from model import registry
from model.method import IntParam
from sweep.space import sampler, suggest_param

optuna.logging.set_verbosity(optuna.logging.WARNING)
#: A range small enough that proposals drawn at random would repeat (40 draws of 60 points).
SEEDS = IntParam("seed", 0, 59)


def _proposed(method_name: str, seed: int, n: int = 40) -> list[int]:
    study = optuna.create_study(sampler=sampler(registry.get(method_name), seed))
    # Every proposed seed scores alike: whatever the sampler models, nothing steers it.
    study.optimize(lambda t: float(suggest_param(t, SEEDS) % 2), n_trials=n)
    return [t.params["seed"] for t in study.trials]


def test_the_clock_sweep_proposes_each_seed_once_in_an_order_its_seed_repeats() -> None:
    proposed = _proposed("clock", seed=3)
    assert len(set(proposed)) == len(proposed) == 40
    assert proposed == _proposed("clock", seed=3)
    assert proposed != _proposed("clock", seed=4)


def test_a_seed_finished_or_running_elsewhere_is_not_proposed_again() -> None:
    study = optuna.create_study(sampler=sampler(registry.get("clock"), 0))
    for s in range(59):  # all but one: finished in another worker, or still running there
        study.enqueue_trial({"seed": s})
        t = study.ask()
        assert suggest_param(t, SEEDS) == s
        if s % 2:
            study.tell(t, 0.5)
    assert suggest_param(study.ask(), SEEDS) == 59


@pytest.mark.parametrize(
    ("method", "kind"),
    [("l1", optuna.samplers.TPESampler), ("clock", optuna.samplers.BruteForceSampler)],
)
def test_the_learning_rate_is_modelled_the_seed_enumerated(method: str, kind: type) -> None:
    assert isinstance(sampler(registry.get(method), 0), kind)
