"""What a trial delivered, as one typed record: its model's honest numbers, how it ended, and
its verdict with the advice. ``sweep.delivery`` builds it once and ``write``s it; the note, the
report, ``eval``, the figures and the leader check ``read`` it back. Each field says here, and
only here, under which key (a constant of ``sweep.records``) and as which kind of attribute it
is kept: a field added touches its key, this module and its writer (and a reader that shows
it); a field moved, this module alone.

Where a field goes: optuna-dashboard draws every *user* attribute on one unwrapped line beside
the trial's note, so the longest one sets the width of the trial's pane (its issue #448). The
user attributes hold the short facts (numbers, names, paths), which the dashboard lists; the
long texts (the advice, the plan's advice and the reason), which the note gives in full, are
*system* attributes, and the test MSE is kept one frequency a key. At 1400 px the note then
fits the window (``tests/report/test_dashboard.py`` measures it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from sweep import records as rec
from sweep.store import optuna_private

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial, Trial

USER = "user"
"""A user attribute: the dashboard lists it, on one line."""
SYSTEM = "system"
"""A system attribute of the trial, which the dashboard does not draw; studies recorded before
kept these fields as user attributes, where ``read`` finds them too."""
PER_FREQ = "per_freq"
"""One user attribute a frequency (``records.per_freq_key``); studies recorded before kept them
as one dict under the field's key, where ``read`` finds them too."""


@dataclass(frozen=True)
class Where:
    """Where a field of the record is kept."""

    key: str
    kind: str = USER
    omit_none: bool = False
    """Not written at all when None (a field that only some trials have)."""


def _at(key: str, kind: str = USER, omit_none: bool = False) -> Any:
    return field(default=None, metadata={Where: Where(key, kind, omit_none)})


@dataclass(frozen=True)
class TrialRecord:
    """What a trial delivered. None: not recorded (a study recorded before the field existed);
    an MSE is None where it was not finite (JSON has no NaN) once written and read back."""

    train_mse: float | None = _at(rec.TRAIN_MSE)
    """Honest MSE of the delivered model on the training set (frozen weights, whole set)."""
    val_mse: float | None = _at(rec.VAL_MSE)
    """Its honest validation MSE: the trial's objective value."""
    test_mse: float | None = _at(rec.TEST_MSE)
    test_train_ratio: float | None = _at(rec.TEST_TRAIN_RATIO)
    test_mse_per_freq: tuple[tuple[float, float | None], ...] = field(
        default=(), metadata={Where: Where(rec.TEST_MSE_PER_FREQ, PER_FREQ)}
    )
    """(frequency in Hz, the test MSE of that component), in frequency order."""
    tier: str | None = _at(rec.TIER)
    """The highest tier of the success criteria it meets (``rules.criteria.tier``)."""
    at_floor: bool | None = _at(rec.AT_FLOOR)
    """Its validation MSE is at the predict-zero floor of the study's data."""
    epochs: int | None = _at(rec.EPOCHS)
    best_epoch: int | None = _at(rec.BEST_EPOCH)
    """The epoch whose weights it delivered."""
    stop_reason: str | None = _at(rec.STOP_REASON)
    final_online_loss: float | None = _at(rec.FINAL_ONLINE_LOSS)
    """The last epoch's mean online training loss (not an MSE of the model)."""
    wall_seconds: float | None = _at(rec.WALL_SECONDS)
    peak_rss_mb: float | None = _at(rec.PEAK_RSS_MB)
    best_checkpoint: str | None = _at(rec.BEST_CHECKPOINT)
    """Path of the delivered model (``best.npz``), relative to where the sweep ran."""
    engine: str | None = _at(rec.ENGINE)
    value_step: int | None = _at(rec.VALUE_STEP, omit_none=True)
    """A pruned trial's step that carries its validation MSE as Optuna's value (None: the
    trial completed, and its value is the objective's return); ``records.VALUE_STEP``."""
    verdict: str | None = _at(rec.VERDICT)
    verdict_epoch: int | None = _at(rec.VERDICT_EPOCH)
    """The epoch at which a rule fired (None: none did)."""
    verdict_reason: str | None = _at(rec.VERDICT_REASON, SYSTEM)
    action: str | None = _at(rec.ACTION, SYSTEM)
    """The tool's advice (at the floor: its own, whatever the plan's row says)."""
    plan_action: str | None = _at(rec.PLAN_ACTION, SYSTEM)
    """What the plan's Decision Matrix says for the verdict."""


def write(trial: Trial, record: TrialRecord) -> None:
    """Store ``record`` on a running trial (while it runs: Optuna refuses a finished trial's
    attributes), each field where ``TrialRecord`` says."""
    for key, value, kind in _stored(record):
        if kind == SYSTEM:
            optuna_private.set_trial_system_attr(trial, key, value)
        else:
            trial.set_user_attr(key, value)


def read(trial: FrozenTrial) -> TrialRecord | None:
    """What ``trial`` recorded of the record; None if nothing (a trial still running). A trial
    cut off or refused holds its stop reason alone. A field that a study recorded before did
    not record is None, and a field since moved is read where it was then."""
    user, system = trial.user_attrs, trial.system_attrs
    wheres = {f.name: f.metadata[Where] for f in fields(TrialRecord)}
    if not any(_holds(w, user, system) for w in wheres.values()):
        return None
    return TrialRecord(**{name: _read(w, user, system) for name, w in wheres.items()})


def _holds(where: Where, user: Mapping[str, Any], system: Mapping[str, Any]) -> bool:
    if where.kind == PER_FREQ:
        return where.key in user or any(rec.freq_of_key(k) is not None for k in user)
    return where.key in user or where.key in system


def _read(where: Where, user: Mapping[str, Any], system: Mapping[str, Any]) -> Any:
    if where.kind == PER_FREQ:
        return _per_freq(user, user.get(where.key))
    if where.kind == SYSTEM:
        return system.get(where.key, user.get(where.key))
    return user.get(where.key)


def _stored(record: TrialRecord) -> Iterator[tuple[str, Any, str]]:
    """(key, value as stored, kind) of every attribute the record is kept as."""
    for f in fields(record):
        where: Where = f.metadata[Where]
        value = getattr(record, f.name)
        if where.kind == PER_FREQ:
            for hz, mse in value:
                yield rec.per_freq_key(hz), _stored_value(mse), USER
        elif value is not None or not where.omit_none:
            yield where.key, _stored_value(value), where.kind


def _stored_value(x: object) -> object:
    return rec.num(x) if isinstance(x, float) else x


def _per_freq(user: Mapping[str, Any], old: object) -> tuple[tuple[float, float | None], ...]:
    """The per-frequency test MSE: one key a frequency, or in a study recorded before, the
    one dict {"3Hz": mse, ...} under ``records.TEST_MSE_PER_FREQ``."""
    found = {hz: v for k, v in user.items() if (hz := rec.freq_of_key(k)) is not None}
    if not found and isinstance(old, Mapping):
        found = {hz: v for k, v in old.items() if (hz := rec.freq_of_key(k, "")) is not None}
    return tuple(sorted(found.items()))
