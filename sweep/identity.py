"""A study's identity: the settings its numbers depend on, recorded when it is created and
checked whenever it is opened again, so one study never mixes runs of two configurations."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage

from model import registry
from model.data import DataConfig, targets
from sweep import records as rec
from sweep.pruner import DivergencePruner
from sweep.rules.criteria import floor_mse
from sweep.settings import SweepConfig
from sweep.space import enqueue_first
from sweep.store.recovery import requeue
from sweep.store.storage import StorageError, open_storage, sqlite_path


class ConfigConflict(Exception):
    """The stored study was made with other settings than the ones given now."""


def conflicts(stored: dict, current: dict) -> list[str]:
    keys = sorted(set(stored) | set(current))
    return [
        f"{k}: study has {stored.get(k)!r}, command gives {current.get(k)!r}"
        for k in keys
        if stored.get(k) != current.get(k)
    ]


def open_study(config: SweepConfig, heartbeat: bool = True) -> optuna.Study:
    """Create the study, or load it after checking it was made with the same settings."""
    return open_study_and_storage(config, heartbeat)[0]


def open_study_and_storage(
    config: SweepConfig, heartbeat: bool = True, say: Callable[[str], None] | None = None
) -> tuple[optuna.Study, RDBStorage]:
    """Create the study, or load it after checking it was made with the same settings; with
    the storage it was opened on (to mark other processes' trials, ``sweep.store.recovery``).

    Nothing is written to an existing study whose settings conflict. Workers started at once
    may find the study created but its settings not yet recorded: the first to record them
    wins, and the others compare against what was recorded. ``say``: for a worker, where its
    notices of a lost connection go (``sweep.store.storage.open_storage``)."""
    current = config.identity()
    judged_from = config.training_method.judged_from(config.settings)
    _refuse_conflict_read_only(config, current)
    # A trial whose worker went silent is continued from its checkpoint, not restarted.
    storage = open_storage(config.storage, on_stale=requeue if heartbeat else None, say=say)
    if config.study_name in optuna.study.get_all_study_names(storage):
        study = optuna.load_study(study_name=config.study_name, storage=storage)
        _check_identity(config, study.user_attrs.get(rec.STUDY_CONFIG), current)
    study = optuna.create_study(
        study_name=config.study_name,
        storage=storage,
        direction="minimize",
        pruner=DivergencePruner(judge_from_step=judged_from, full_length=config.grown_at),
        load_if_exists=True,
    )
    if rec.STUDY_CONFIG not in study.user_attrs:
        study.set_user_attr(rec.STUDY_CONFIG, current)
        study.set_user_attr(rec.STUDY_OBJECTIVE, rec.OBJECTIVE_TEXT)
        with warnings.catch_warnings():  # experimental in Optuna 5, and what the dashboard reads
            warnings.simplefilter("ignore", ExperimentalWarning)
            study.set_metric_names([rec.METRIC_NAME])
        stored = optuna.load_study(study_name=config.study_name, storage=storage).user_attrs
        _check_identity(config, stored.get(rec.STUDY_CONFIG), current)
        enqueue_first(study, config.training_method, config.settings)
    return study, storage


def _refuse_conflict_read_only(config: SweepConfig, current: dict) -> None:
    """Compare with an existing SQLite study before opening it for writing: opening for
    writing switches the file to WAL mode, and a refused command must leave it untouched."""
    path = sqlite_path(config.storage)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    try:
        storage = open_storage(config.storage, must_exist=True)
    except StorageError:
        return  # not an Optuna database yet, or unreadable: the writing path says why
    try:
        if config.study_name in optuna.study.get_all_study_names(storage):
            study = optuna.load_study(study_name=config.study_name, storage=storage)
            _check_identity(config, study.user_attrs.get(rec.STUDY_CONFIG), current)
    finally:
        storage.engine.dispose()


def _check_identity(config: SweepConfig, stored: dict | None, current: dict) -> None:
    if stored is None:
        return  # being created by another worker right now
    problems = conflicts(stored, current)
    if problems:
        raise ConfigConflict(
            f"study {config.study_name!r} was run with other settings ("
            + "; ".join(problems)
            + "); use another --study-name or the same settings"
        )


def stored_identity(study: optuna.Study) -> dict:
    """The settings recorded on ``study`` (empty for a study this tool did not make)."""
    return study.user_attrs.get(rec.STUDY_CONFIG) or {}


def stored_method(study: optuna.Study) -> str:
    """The training method a study was run with (studies from before methods were recorded
    are L=1 studies)."""
    return stored_identity(study).get("method", registry.DEFAULT)


def stored_data(study: optuna.Study) -> tuple[DataConfig, int]:
    """The data settings the study was run with, and its test seed; a ``ValueError`` for a
    study without them (its sets cannot be rebuilt)."""
    c = stored_identity(study)
    if not c:
        raise ValueError(f"study {study.study_name!r} has no {rec.STUDY_CONFIG!r} attribute: "
                         "its test set cannot be rebuilt")  # fmt: skip
    try:
        config = DataConfig(
            frequencies=tuple(c["frequencies"]),
            sample_rate=c["sample_rate"],
            samples=c["samples"],
            amplitude=tuple(c["amplitude_range"]),
            phase=tuple(c["phase_range"]),
        )
        return config, c["test_seed"]
    except KeyError as exc:
        raise ValueError(f"study {study.study_name!r}: its settings lack {exc}") from None


def stored_floor(study: optuna.Study) -> float:
    """The floor of the study's data (``sweep.rules.criteria.floor_mse``): the best honest MSE of a
    model that cannot tell time. A study without recorded settings gets the assignment's."""
    try:
        config = stored_data(study)[0]
    except ValueError:
        config = DataConfig()
    return data_floor(config)


@functools.cache  # every trial's end asks; the sum over 40,000 sines cost ~25 ms each time
def data_floor(config: DataConfig) -> float:
    """``sweep.rules.criteria.floor_mse`` of the targets of ``config`` (exact: from float64
    sines)."""
    return floor_mse(targets(config, np.float64))
