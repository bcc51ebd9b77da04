"""Where a trial's per-epoch curves are kept: a system attribute (optuna-dashboard draws every
user attribute on one unwrapped line), read back from there, and from the user attribute of a
study recorded before they moved, so an old database still reports."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState, create_trial

from sweep import records as rec
from sweep.report.summary import trial_row
from sweep.store import optuna_private

CURVES = {rec.VAL_MSE_CURVE: [0.5, 0.3], rec.ONLINE_LOSS: [0.2, 0.1], rec.ATTEMPT: [0, 0],
          rec.STAGE: ["grow", "tune"], rec.SECONDS: [1.0, 2.0]}  # fmt: skip


def _trial(where: str, curves: dict = CURVES) -> FrozenTrial:
    kept = {rec.CURVES_KEY: curves}
    return create_trial(
        value=0.3, user_attrs={rec.EPOCHS: 2, **(kept if where == "user" else {})},
        system_attrs=kept if where == "system" else {},
    )  # fmt: skip


@pytest.mark.parametrize("where", ["system", "user"])
def test_curves_are_read_where_they_are_kept_now_and_where_they_were(where: str) -> None:
    t = _trial(where)
    assert rec.curves(t) == CURVES
    assert rec.curve(t, rec.VAL_MSE_CURVE) == [0.5, 0.3]
    assert rec.curve(t, rec.PREFIX) == []  # not recorded


def test_a_trial_without_curves_has_none() -> None:
    t = create_trial(value=0.3)
    assert rec.curves(t) == {} and rec.curve(t, rec.VAL_MSE_CURVE) == []


def test_the_system_attribute_is_the_one_read_when_both_are_there() -> None:
    # A study recorded before, continued after: its copies carry the curves as system
    # attributes (sweep.store.recovery), and they are the newer.
    t = create_trial(value=0.3, user_attrs={rec.CURVES_KEY: {rec.VAL_MSE_CURVE: [0.9]}},
                     system_attrs={rec.CURVES_KEY: CURVES})  # fmt: skip
    assert rec.curve(t, rec.VAL_MSE_CURVE) == [0.5, 0.3]


def test_the_report_reads_an_old_trial_as_a_new_one() -> None:
    assert trial_row(_trial("user")) == trial_row(_trial("system"))
    assert trial_row(_trial("system")).best_online_loss == 0.1


def test_a_reader_handed_the_user_attributes_fails_loudly() -> None:
    # The reader once took a trial's user attributes: a caller left behind must not read
    # "no curves" from them without a word.
    with pytest.raises(AttributeError):
        rec.curve({rec.CURVES_KEY: CURVES}, rec.VAL_MSE_CURVE)  # type: ignore[arg-type]


def test_a_running_trial_of_a_real_study_keeps_its_curves_off_the_user_attributes() -> None:
    study = optuna.create_study()
    trial = study.ask()
    optuna_private.set_trial_system_attr(trial, rec.CURVES_KEY, CURVES)
    assert rec.curves(optuna_private.frozen(trial)) == CURVES
    study.tell(trial, 0.3)
    (done,) = study.get_trials(states=(TrialState.COMPLETE,))
    assert rec.curves(done) == CURVES and rec.CURVES_KEY not in done.user_attrs
