"""The best checkpoint and the HTML report as Optuna artifacts, so optuna-dashboard lists them.

The store is a folder, by default ``artifacts/`` next to the SQLite database (like the
``checkpoints/`` folder of the runner). Start the dashboard with the same folder:

    optuna-dashboard sqlite:///studies.db --artifact-dir artifacts

Both are attached to the study (a finished trial takes no new attributes). Attaching is
idempotent: a file whose name and bytes are already attached is not uploaded again; its existing
artifact id is returned. A new report replaces the previous one of its name (a sweep watched
with repeated reports once left 56 copies of a 5 MB page).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import optuna
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from sweep import records as rec
from sweep.report.summary import collect
from sweep.store.artifact_store import AtomicArtifactStore
from sweep.store.storage import open_storage, sqlite_path
from sweep.trial_record import TrialRecord
from sweep.trial_record import read as read_record

ARTIFACT_DIR = "artifacts"
#: Optuna's key prefix for artifact metadata in (trial or study) system attributes (read only
#: where optuna-dashboard has left a null entry: see ``artifact_metas``).
META_PREFIX = "artifacts:"


class ArtifactError(Exception):
    """A file that should be attached but cannot be found."""


def default_artifact_dir(storage_url: str) -> Path:
    """``artifacts/`` beside the SQLite file; beside the working folder for other back ends."""
    db = sqlite_path(storage_url)
    return (db.parent if db is not None else Path.cwd()) / ARTIFACT_DIR


def open_store(directory: Path) -> FileSystemArtifactStore:
    directory.mkdir(parents=True, exist_ok=True)
    return AtomicArtifactStore(directory)  # a full disk leaves no half-written artifact


def resolve_checkpoint(trial: FrozenTrial, base: Path | None = None) -> Path:
    """The file of the trial's ``best_checkpoint``. The runner stores it relative to the
    folder it ran in; if that is not this folder, try it under ``base`` (the database's folder),
    then as ``<base>/checkpoints/<study>/trial-NNNN/best.npz``."""
    stored = (read_record(trial) or TrialRecord()).best_checkpoint
    if not stored:
        raise ArtifactError(
            f"trial {trial.number} ({trial.state.name.lower()}) has no best checkpoint"
        )
    path = Path(stored)
    candidates = [path]
    if base is not None and not path.is_absolute():
        candidates += [base / path, base / "checkpoints" / Path(*path.parts[-3:])]
    candidates = list(dict.fromkeys(candidates))  # base/path and base/checkpoints/... coincide
    for c in candidates:
        if c.is_file():
            return c
    tried = ", ".join(str(c) for c in candidates)
    raise ArtifactError(f"trial {trial.number}'s checkpoint is not there (tried {tried})")


def artifact_metas(study: optuna.Study, storage: str | BaseStorage | None = None) -> list[dict]:
    """The artifacts attached to the study, as dicts (artifact_id, filename, ...).

    Through ``optuna.artifacts.get_all_artifact_meta``; that fails on the null entries
    optuna-dashboard leaves when an artifact is deleted in its UI, and then the entries are
    read through the public storage API of ``storage`` (the URL or storage the study was
    loaded from), skipping the nulls. Without ``storage`` none is known: the file is attached
    again rather than recognised.
    """
    try:
        return [asdict(m) for m in get_all_artifact_meta(study)]
    except TypeError:  # json "null": a deleted artifact
        if storage is None:
            return []
    if isinstance(storage, str):
        storage = open_storage(storage, must_exist=True)
    attrs = storage.get_study_system_attrs(storage.get_study_id_from_name(study.study_name))
    metas = [json.loads(v) for k, v in attrs.items() if k.startswith(META_PREFIX)]
    return [m for m in metas if m is not None]


def _digest(fh: BinaryIO) -> str:
    return hashlib.file_digest(fh, "sha256").hexdigest()


def _already(
    store: FileSystemArtifactStore, metas: list[dict], path: Path, name: str
) -> str | None:
    """The id of an artifact in ``store`` named ``name`` with the bytes of ``path``, if any."""
    with path.open("rb") as fh:
        digest = _digest(fh)
    for m in metas:
        if m["filename"] != name:
            continue
        try:
            with store.open_reader(m["artifact_id"]) as fh:
                if _digest(fh) == digest:
                    return m["artifact_id"]
        except ArtifactNotFound:  # attached to another store, or removed from this one
            continue
    return None


def attach(
    study: optuna.Study,
    store: FileSystemArtifactStore,
    path: Path,
    name: str | None = None,
    mimetype: str | None = None,
    storage: str | BaseStorage | None = None,
    replace: bool = False,
) -> str:
    """Attach ``path`` to the study under the file name ``name`` (its own by default);
    returns the artifact id, the existing one when the same name and bytes are there already
    (``storage``: see ``artifact_metas``). With ``replace`` and ``storage``, the artifacts of
    that name attached before are removed, as optuna-dashboard's delete button does."""
    if not path.is_file():
        raise ArtifactError(f"no file {path} to attach")
    name = name or path.name
    before = artifact_metas(study, storage)
    found = _already(store, before, path, name)
    if found is not None:
        return found
    with tempfile.TemporaryDirectory() as tmp:
        # upload_artifact names the artifact after the file it reads.
        named = Path(tmp) / name
        shutil.copyfile(path, named)
        new = upload_artifact(
            artifact_store=store, file_path=str(named), study_or_trial=study, mimetype=mimetype
        )
    if replace and storage is not None:
        # Only those listed before the upload: a report made at the same moment by another
        # command keeps its own copy rather than both removing each other's.
        _remove(study, store, [m["artifact_id"] for m in before if m["filename"] == name],
                storage)  # fmt: skip
    return new


def _remove(study: optuna.Study, store: FileSystemArtifactStore, ids: list[str],
            storage: str | BaseStorage) -> None:  # fmt: skip
    """Remove artifacts from the store and mark their entries deleted: optuna-dashboard's own
    way (a null entry; Optuna has no call that removes a study's system attribute)."""
    if not ids:
        return
    opened = None
    if isinstance(storage, str):
        opened = open_storage(storage, must_exist=True, writes="attaching artifacts")
    writer = opened if opened is not None else storage
    study_id = writer.get_study_id_from_name(study.study_name)
    for artifact_id in ids:
        with contextlib.suppress(ArtifactNotFound):  # in another store: its entry goes too
            store.remove(artifact_id)
        writer.set_study_system_attr(study_id, META_PREFIX + artifact_id, json.dumps(None))
    if opened is not None:
        opened.engine.dispose()


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The report's best trial: lowest validation MSE, complete or pruned (see report.collect)."""
    best = collect(study).best
    if best is None:
        return None
    return next(t for t in study.get_trials(deepcopy=False) if t.number == best.number)


def checkpoint_name(number: int) -> str:
    return f"trial-{number:04d}-{rec.BEST}"


def attach_best_checkpoint(
    study: optuna.Study,
    store: FileSystemArtifactStore,
    base: Path | None = None,
    storage: str | BaseStorage | None = None,
) -> str | None:
    """Attach the best trial's best checkpoint to the study as ``trial-NNNN-best.npz``; None
    while no trial has finished.

    To the study, not to the trial: Optuna refuses new attributes (artifact metadata included)
    on a finished trial, and the best trial is only known once trials have finished.
    """
    trial = best_trial(study)
    if trial is None:
        return None
    path = resolve_checkpoint(trial, base)
    name = checkpoint_name(trial.number)
    return attach(study, store, path, name, "application/octet-stream", storage)


def attach_report(
    study: optuna.Study,
    store: FileSystemArtifactStore,
    html_path: Path,
    storage: str | BaseStorage | None = None,
) -> str:
    """Attach the HTML report to the study (it covers every trial), in place of the previous
    report of the same name (with ``storage``)."""
    return attach(study, store, Path(html_path), mimetype="text/html", storage=storage,
                  replace=True)  # fmt: skip


def attach_after_sweep(
    study: optuna.Study, storage_url: str, log: Callable[[str], None] = print
) -> str | None:
    """The sweep's closing step: the best checkpoint into the default store beside the
    database. A checkpoint that cannot be found is logged, not raised: the sweep succeeded."""
    folder = default_artifact_dir(storage_url)
    db = sqlite_path(storage_url)
    try:
        base = db.parent if db else None
        artifact = attach_best_checkpoint(study, open_store(folder), base, storage_url)
    except (ArtifactError, OSError) as exc:
        log(f"warning: best checkpoint not attached as an artifact: {exc}")
        return None
    if artifact is not None:
        log(f"best checkpoint attached for optuna-dashboard (--artifact-dir {folder})")
    return artifact
