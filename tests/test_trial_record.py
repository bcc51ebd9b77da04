"""What a trial delivered, as one typed record: written on a running trial, read back the same,
each field where ``sweep.trial_record`` puts it (the long texts off the user attributes, which
optuna-dashboard draws each on one unwrapped line), and a study recorded before read alike."""

from __future__ import annotations

import math
from dataclasses import replace

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from sweep import records as rec
from sweep.rules.divergence import diagnose
from sweep.trial_record import TrialRecord, read, write

optuna.logging.set_verbosity(optuna.logging.WARNING)

JUMP = diagnose([0.2847, 0.4058, 0.43])
RECORD = TrialRecord(
    train_mse=0.3516, val_mse=0.3513, test_mse=0.3515, test_train_ratio=0.9997,
    test_mse_per_freq=((1.0, 0.0963), (3.0, 0.3097), (5.0, 0.5132), (7.0, 0.4867)),
    tier="below", at_floor=True, epochs=2, best_epoch=2, stop_reason="pruned",
    final_online_loss=0.3212, wall_seconds=0.096, peak_rss_mb=218.7,
    best_checkpoint="checkpoints/s/trial-0000/best.npz", engine="fast", value_step=3,
    verdict=JUMP.verdict, verdict_epoch=JUMP.epoch, verdict_reason=JUMP.reason,
    action="another seed: the learning rate is not the cause", plan_action=JUMP.action,
)  # fmt: skip
TEXTS = (rec.ACTION, rec.PLAN_ACTION, rec.VERDICT_REASON)


def _written(record: TrialRecord, state: TrialState = TrialState.PRUNED) -> FrozenTrial:
    """``record`` written on a running trial of a real study, read back once it has ended."""
    study = optuna.create_study()
    trial = study.ask()
    trial.set_user_attr(rec.WORKER, "host:1:2")  # not the record's: left alone
    write(trial, record)
    study.tell(trial, 0.35 if state == TrialState.COMPLETE else None, state=state)
    return study.trials[0]


def test_a_written_record_reads_back_the_same() -> None:
    assert read(_written(RECORD)) == RECORD
    complete = replace(RECORD, stop_reason="max_epochs", value_step=None)
    assert read(_written(complete, TrialState.COMPLETE)) == complete


def test_the_long_texts_are_kept_off_the_attributes_the_dashboard_draws() -> None:
    t = _written(RECORD)
    assert {k: t.system_attrs[k] for k in TEXTS} == {
        rec.ACTION: RECORD.action,
        rec.PLAN_ACTION: "reduce LR to 5e-5 and restart",
        rec.VERDICT_REASON: "loss rose 42.5% from epoch 1 (0.2847) to epoch 2 (0.4058)",
    }
    assert not set(TEXTS) & set(t.user_attrs)
    # The test MSE a frequency a key, not one dict of four numbers on one line.
    assert t.user_attrs["test_mse_3Hz"] == 0.3097 and rec.TEST_MSE_PER_FREQ not in t.user_attrs
    assert t.user_attrs[rec.VERDICT] == "jump" and t.user_attrs[rec.VERDICT_EPOCH] == 2
    assert t.user_attrs[rec.WORKER] == "host:1:2"


def test_a_completed_trial_stores_no_value_step_and_a_nan_as_null() -> None:
    t = _written(replace(RECORD, value_step=None, train_mse=math.nan, verdict_epoch=None))
    assert rec.VALUE_STEP not in t.user_attrs
    # JSON has no NaN; a field that is None is stored all the same (the key says it was read).
    assert t.user_attrs[rec.TRAIN_MSE] is None and t.user_attrs[rec.VERDICT_EPOCH] is None
    assert read(t).train_mse is None and read(t).value_step is None


def test_a_study_recorded_before_reads_as_a_new_one() -> None:
    """Before this record the texts were user attributes and the per-frequency test MSE one
    dict; older still, a trial lacks the fields added since (engine, final_online_loss)."""
    old = {
        rec.TRAIN_MSE: 0.3516,
        rec.VAL_MSE: 0.3513,
        rec.TEST_MSE: 0.3515,
        rec.TEST_TRAIN_RATIO: 0.9997,
        rec.TIER: "below",
        rec.AT_FLOOR: True,
        rec.EPOCHS: 2,
        rec.BEST_EPOCH: 2,
        rec.STOP_REASON: "pruned",
        rec.WALL_SECONDS: 0.096,
        rec.PEAK_RSS_MB: 218.7,
        rec.BEST_CHECKPOINT: RECORD.best_checkpoint,
        rec.VALUE_STEP: 3,
        rec.VERDICT: "jump",
        rec.VERDICT_EPOCH: 2,
        rec.ACTION: RECORD.action,
        rec.PLAN_ACTION: RECORD.plan_action,
        rec.VERDICT_REASON: RECORD.verdict_reason,
        rec.TEST_MSE_PER_FREQ: {"1Hz": 0.0963, "3Hz": 0.3097, "5Hz": 0.5132, "7Hz": 0.4867},
    }
    trial = create_trial(state=TrialState.PRUNED, user_attrs=old)  # fmt: skip
    assert read(trial) == replace(RECORD, engine=None, final_online_loss=None)


def test_a_trial_holds_what_it_recorded_and_a_running_one_nothing() -> None:
    running = create_trial(state=TrialState.RUNNING, user_attrs={rec.WORKER: "h:1:2"})
    assert read(running) is None
    cut_off = create_trial(state=TrialState.FAIL, user_attrs={rec.STOP_REASON: "owner_died"})
    assert read(cut_off) == TrialRecord(stop_reason="owner_died")
