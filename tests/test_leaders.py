"""The study's leader read from real Optuna storage (sweep.leaders.lead_check): rivals are the
other COMPLETE trials with a goal MSE that did not stop as converged; the asking trial's goal
MSE is recorded for later runs; a model finished after one asking is seen at the next."""

from __future__ import annotations

import optuna
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from sweep import records as rec
from sweep.leaders import lead_check


def _finished(study: optuna.Study, goal: float | None, stop: str = "target",
              state: TrialState = TrialState.COMPLETE) -> None:  # fmt: skip
    attrs = {rec.STOP_REASON: stop, **({rec.GOAL_MSE: goal} if goal is not None else {})}
    study.add_trial(create_trial(state=state, value=0.5 if state == TrialState.COMPLETE
                                 else None, intermediate_values={1: 0.5}, user_attrs=attrs,
                                 params={"seed": 1},
                                 distributions={"seed": IntDistribution(0, 9)}))  # fmt: skip


def test_the_leader_is_read_from_the_study_each_time(tmp_path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'studies.db'}")
    _finished(study, 0.004)
    _finished(study, None)  # no goal MSE (never polished): no rival
    _finished(study, 0.0001, state=TrialState.PRUNED)  # a pruned trial is no rival
    _finished(study, 0.0002, stop=rec.STOP_CONVERGED)  # nor one that could go no further
    running = study.ask()
    check = lead_check(running)
    assert not check(0.0009)  # no excellent rival yet: this model is delivered at once
    assert study.trials[running.number].user_attrs[rec.GOAL_MSE] == 0.0009
    _finished(study, 0.0008)
    assert check(0.0007) and not check(0.0008) and not check(0.0009)
    _finished(study, 0.0003)  # another worker's model, finished meanwhile
    assert not check(0.0007) and check(0.0002)
    study.tell(running, 0.0001)  # finished, its own goal MSE is no rival of its own
    assert check(0.0002)
    # A run still polishing is a rival once it has asked (its goal MSE recorded).
    other = study.ask()
    assert lead_check(other)(0.00015)  # ahead of every finished rival: leads, and records it
    assert not lead_check(study.ask())(0.00018)
