"""A finished run that a later rival makes the study's leader (bench/results/clock_sweeps.md,
run J: the first run reached the best goal before any rival had one) is polished on in one more
trial, from its last checkpoint, in a full study too; the run counts once; an interruption of
that polish is continued to the same numbers.

Tiny clock sweeps in this process (about 3 s each): 100 samples a block, so every attempt is
grown at once and polished; the rule's "one rival excellent already" is waived, as no tiny
model is excellent (the rule itself: tests/rules/test_leader.py)."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

import sweep.leaders
from model.clock.training import ClockTraining
from sweep import records as rec
from sweep.report import figures as fg
from sweep.report.summary import CONTINUED, collect, trial_rows
from sweep.report.text import render_text
from sweep.runner import run_sweep
from sweep.settings import SweepConfig
from sweep.store.recovery import finished_count

#: Sampler seed 4 proposes, after seed 1, a seed whose goal MSE is behind seed 1's (checked).
#: Tiny clocks are all far above --polish-give-up: it is off, or no run would polish on.
TINY = dict(method="clock", trials=2, workers=1, samples=100, epochs=10, updates_per_epoch=2,
            polish_evaluations=4, polish_leader_evaluations=12, polish_goal_after=0,
            polish_give_up=0.0, sampler_seed=4, quiet=True)  # fmt: skip


def any_rival(goal: float, rivals) -> bool:
    known = [v for v in rivals if v is not None and math.isfinite(v)]
    return bool(known) and goal < min(known)


@pytest.fixture(autouse=True)
def no_excellence_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep.leaders, "leads", any_rival)


def sweep_in(folder, log=None) -> optuna.Study:
    config = SweepConfig(storage=f"sqlite:///{folder / 's.db'}",
                         checkpoint_dir=str(folder / "checkpoints"), **TINY)  # fmt: skip
    return run_sweep(config, log=log or (lambda m: None))


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sweep.leaders, "leads", any_rival)
        lines: list[str] = []
        study = sweep_in(tmp_path_factory.mktemp("unbroken"), lines.append)
    return study, lines


def test_the_first_run_is_polished_on_once_a_rival_finishes_behind_it(unbroken) -> None:
    study, lines = unbroken
    first, rival, polish = study.trials
    assert first.user_attrs[rec.GOAL_MSE] < rival.user_attrs[rec.GOAL_MSE]
    assert first.user_attrs[rec.STOP_REASON] == rec.STOP_MAX_EPOCHS
    assert polish.state == TrialState.COMPLETE and polish.params == first.params
    assert polish.user_attrs[rec.LEADS_ON] == 0 and polish.user_attrs[rec.CONTINUED_FROM] == 0
    assert polish.value < first.value
    # One curve: the run's epochs, then the leader's, each reported once.
    epochs, before = len(polish.intermediate_values), len(first.intermediate_values)
    assert sorted(polish.intermediate_values) == list(range(1, epochs + 1))
    # Every epoch from the first run's last on went on because the run led (its last aside).
    assert rec.curve(polish, rec.LEADING)[before - 1 : -1] == [True] * (epochs - before)
    assert "trial 2: polishing on trial 0 from epoch 3" in lines
    # Two runs asked for, two counted: the polish is the first run's, not a third.
    assert finished_count(study) == 2
    summary = collect(study)
    assert [r.state for r in summary.rows] == [CONTINUED, "COMPLETE", "COMPLETE"]
    assert summary.best.number == 2 and study.best_trial.number == 2
    # One point and one curve per run: trial 2's curve starts with trial 0's.
    assert [p.number for p in fg.sweep_info(summary).points] == [1, 2]
    curves = fg.curves_info(study.trials, summary.floor, "seed").curves
    assert [c.number for c in curves] == [1, 2]
    assert curves[1].val_mse[:3] == tuple(rec.curve(first, rec.VAL_MSE_CURVE))
    assert " CONTINUED " in render_text(summary)


def test_a_cut_off_polish_continues_to_the_same_numbers(unbroken, tmp_path, monkeypatch) -> None:
    study, _ = unbroken
    run_epoch = ClockTraining.run_epoch

    def cut_off(self):
        if any(r.leading for r in self.state.history) and self.state.epoch >= 5:
            raise KeyboardInterrupt
        return run_epoch(self)

    monkeypatch.setattr(ClockTraining, "run_epoch", cut_off)
    with pytest.raises(KeyboardInterrupt):
        sweep_in(tmp_path)
    monkeypatch.setattr(ClockTraining, "run_epoch", run_epoch)
    lines: list[str] = []
    resumed = sweep_in(tmp_path, lines.append)
    states = [t.state for t in resumed.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL,
                      TrialState.COMPLETE]  # fmt: skip
    assert resumed.trials[2].user_attrs[rec.STOP_REASON] == rec.STOP_INTERRUPTED
    last = resumed.trials[3]
    assert last.user_attrs[rec.LEADS_ON] == 0 and last.user_attrs[rec.CONTINUED_FROM] == 2
    assert "trial 3: continuing trial 2 from epoch 5" in lines
    assert last.value == study.trials[2].value
    assert last.intermediate_values == study.trials[2].intermediate_values
    assert finished_count(resumed) == 2
    lines.clear()
    sweep_in(tmp_path, lines.append)
    assert "study 'lstm-clock' already holds 2 finished trials; nothing to run" in lines


def test_a_polish_given_up_out_of_reach_says_so_and_advises_another_seed(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiny clock is far above any give-up bar: its polish stops at its goal, the trial says
    why and advises what the sweep found, not the plan's "continue to convergence"."""
    from optuna_dashboard import get_note

    import sweep.delivery

    # A tiny clock learns nothing: taken as off the floor, whose advice would come first.
    monkeypatch.setattr(sweep.delivery, "at_floor", lambda val, floor: False)

    from model.clock.words import OUT_OF_REACH_ACTION
    from sweep.report.outcomes import outcome_lines, outcomes
    from sweep.rules.divergence import ACTIONS
    from sweep.trial_record import read as read_record

    config = SweepConfig(storage=f"sqlite:///{tmp_path / 's.db'}",
                         checkpoint_dir=str(tmp_path / "checkpoints"),
                         **{**TINY, "trials": 1, "polish_goal_after": 2,
                            "polish_give_up": 0.002})  # fmt: skip
    study = run_sweep(config, log=lambda m: None)
    (trial,) = study.trials
    polish = [s for s in rec.curve(trial, rec.STAGE) if s == "polish"]
    assert trial.user_attrs[rec.STOP_REASON] == rec.STOP_BEHIND and len(polish) == 1
    assert trial.value > 0.002
    assert trial.user_attrs[rec.VERDICT] == "healthy"
    record = read_record(trial)
    assert record.action == OUT_OF_REACH_ACTION and record.plan_action == ACTIONS["healthy"]
    storage = optuna.storages.RDBStorage(config.storage)
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    note = get_note(optuna.Trial(optuna.load_study(study_name=study.study_name,
                                                   storage=storage), trial_id))  # fmt: skip
    assert OUT_OF_REACH_ACTION in note and "given up there, still above 0.002" in note
    rows = trial_rows(study.get_trials())
    assert "given up out of reach of the target" in "\n".join(outcome_lines(outcomes(rows)))
