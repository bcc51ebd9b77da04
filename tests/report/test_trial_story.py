"""What a trial tells a person on optuna-dashboard: the advice agrees with the finding, a note
with the verdict and numbers, the delivered model attached, the objective named."""

from __future__ import annotations

import json

import optuna
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from optuna_dashboard import get_note  # reads back what save_note wrote

from model import registry
from sweep import records as rec
from sweep.report.notes import TrialFacts, trial_note
from sweep.rules.divergence import ACTIONS
from sweep.trial_record import TrialRecord
from sweep.trial_record import read as read_record


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))


def test_at_the_floor_the_advice_is_the_tools_own_and_the_plans_is_kept(tiny_study) -> None:
    study = tiny_study.load()
    l1 = registry.get("l1")
    for t in finished(study):
        r = read_record(t)
        assert r.at_floor is True  # 200 samples: its own floor, not 0.5
        assert r.action == l1.reporting.floor_action
        assert "learning rate is not the cause" in r.action and "--method clock" in r.action
        assert r.plan_action == ACTIONS[r.verdict]
        assert "increase LR" not in r.action


def test_every_finished_trial_has_a_note_and_its_model_attached(tiny_study) -> None:
    storage = optuna.storages.RDBStorage(tiny_study.url)
    study = optuna.load_study(study_name=tiny_study.name, storage=storage)
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in finished(study):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        note = get_note(optuna.Trial(study, trial_id))
        assert f"## Trial {t.number}: {t.user_attrs[rec.VERDICT]}" in note
        assert "not meaningful at the floor" in note
        assert f"{t.user_attrs[rec.TEST_MSE]:.5f}" in note
        metas = get_all_artifact_meta(optuna.Trial(study, trial_id))
        assert [m.filename for m in metas] == [rec.BEST]
    study_note = get_note(study)
    assert f"## Study {study.study_name}" in study_note and "Best trial" in study_note
    assert study.metric_names == [rec.METRIC_NAME]


def test_a_note_off_the_floor_gives_the_plans_advice_and_grades_the_ratio() -> None:
    record = TrialRecord(
        verdict="healthy", verdict_reason="no rule fired in 30 epochs",
        action=ACTIONS["healthy"], plan_action=ACTIONS["healthy"], epochs=30, best_epoch=29,
        train_mse=0.0014, val_mse=0.00135, test_mse=0.0014, at_floor=False,
    )  # fmt: skip
    facts = TrialFacts(number=3, method="clock", trained="clock seed 3", disclosure=None,
                       record=record, best_online_loss=0.001, floor=0.5)  # fmt: skip
    note = trial_note(facts)
    assert "The plan's row" not in note and "At the floor" not in note
    assert "| test/train | 1.00 | met (-0.50) | met (-0.40) | met (-0.20) |" in note
    assert "| train MSE | 0.00140 | met (-0.00860) | met (-0.00360) | missed (+0.00040) |" in note
    json.dumps(note)  # plain text
