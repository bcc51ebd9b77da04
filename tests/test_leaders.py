"""The study's leader read from real Optuna storage (sweep.leaders.lead_check): rivals are the
other COMPLETE trials with a goal MSE that did not stop as converged; the asking trial's goal
MSE is recorded for later runs; a model finished after one asking is seen at the next."""

from __future__ import annotations

import optuna
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from sweep import records as rec
from sweep.admission import refuse_surplus
from sweep.leaders import finished_leader, lead_check
from sweep.report.summary import CONTINUED, trial_rows
from sweep.store.recovery import occupancy


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


def _study(tmp_path) -> optuna.Study:
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'studies.db'}")


def test_a_finished_run_leads_once_an_excellent_rival_finishes_behind_it(tmp_path) -> None:
    """Run J's case: the first run reached the best goal before any rival had one."""
    study = _study(tmp_path)
    _finished(study, 0.0004)  # first: no rival when it reached its goal, so it stopped
    assert finished_leader(study.get_trials()) is None
    _finished(study, 0.002)  # a rival, not excellent: the first could still be delivered
    assert finished_leader(study.get_trials()) is None
    _finished(study, 0.0006)  # an excellent rival behind it: the first run leads
    assert finished_leader(study.get_trials()).number == 0
    _finished(study, 0.0003, stop=rec.STOP_CONVERGED)  # could go no further: no rival
    assert finished_leader(study.get_trials()).number == 0
    refused = {rec.LEADS_ON: 0, rec.STOP_REASON: rec.STOP_SURPLUS}  # a refused polish on 0
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs=refused))
    assert finished_leader(study.get_trials()).number == 0
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={rec.LEADS_ON: 0}))
    assert finished_leader(study.get_trials()) is None  # polished on already (or queued)


def test_a_run_is_no_rival_of_its_own_continuation(tmp_path) -> None:
    study = _study(tmp_path)
    _finished(study, 0.0004)
    _finished(study, 0.0006)
    queued = study.ask({"seed": IntDistribution(0, 9)})
    for key, value in ((rec.CONTINUES_TRIAL, 0), (rec.LEADS_ON, 0)):
        queued.set_user_attr(key, value)
    assert lead_check(queued)(0.0004)  # trial 0's goal is its own, not a rival's
    _finished(study, 0.0001)
    assert not lead_check(queued)(0.0004)


def test_a_polish_on_a_finished_run_takes_no_place_in_the_trials_asked(tmp_path) -> None:
    study = _study(tmp_path)
    _finished(study, 0.0004)
    _finished(study, 0.0006)
    polished = {rec.LEADS_ON: 0, rec.CONTINUES_TRIAL: 0}
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.0002, user_attrs=polished))
    assert occupancy(study.get_trials()) == (2, 0)
    polish = study.ask()
    polish.set_user_attr(rec.LEADS_ON, 0)
    refuse_surplus(polish, wanted=2)  # a full study still runs it: no SurplusTrial
    rows = trial_rows(study.get_trials())
    assert [r.state for r in rows][:3] == [CONTINUED, "COMPLETE", "COMPLETE"]
