"""The study's leader read from real Optuna storage (sweep.leaders.lead_check): the other
COMPLETE trials count, the asking trial itself, pruned and running ones do not, and a model
finished after the check was made is seen at the next question."""

from __future__ import annotations

import optuna
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from sweep.leaders import lead_check


def _finished(study: optuna.Study, value: float, state: TrialState = TrialState.COMPLETE):
    study.add_trial(create_trial(state=state, value=value if state == TrialState.COMPLETE
                                 else None, intermediate_values={1: value},
                                 params={"seed": 1},
                                 distributions={"seed": IntDistribution(0, 9)}))  # fmt: skip


def test_the_leader_is_read_from_the_study_each_time(tmp_path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'studies.db'}")
    _finished(study, 0.004)
    _finished(study, 0.0001, TrialState.PRUNED)  # a pruned trial's model is not a leader's rival
    running = study.ask()
    check = lead_check(running)
    assert not check(0.0009)  # no excellent model finished yet: this one is delivered at once
    _finished(study, 0.0008)
    assert check(0.0007) and not check(0.0008) and not check(0.0009)
    _finished(study, 0.0003)  # another worker's model, finished meanwhile
    assert not check(0.0007) and check(0.0002)
    study.tell(running, 0.0002)  # finished, its own value does not count against it
    assert check(0.0002)
