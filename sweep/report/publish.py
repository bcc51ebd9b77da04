"""``study.py report`` beyond the text: the HTML page and the best checkpoint, attached to the
study for optuna-dashboard."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import optuna

from model.checkpoint import CheckpointError
from sweep.report.artifacts import (
    ArtifactError,
    attach_best_checkpoint,
    attach_report,
    default_artifact_dir,
    open_store,
)
from sweep.report.html import write_report
from sweep.report.summary import Summary
from sweep.store.storage import sqlite_path


class PublishError(Exception):
    """The page or the artifacts could not be written (one line says why)."""


def publish(
    study: optuna.Study,
    summary: Summary,
    storage: str,
    html: str | None,
    artifacts: str | None,
    trial: int | None,
    freq: float,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> None:
    """Write the page (when ``html``), attach it and the best checkpoint to the study, and say
    where to look. ``say`` prints what was done; ``warn``, what is missing though the report
    stands."""
    db = sqlite_path(storage)
    base = db.parent if db is not None else None
    folder = Path(artifacts) if artifacts else default_artifact_dir(storage)
    try:
        path = None if html is None else write_report(study, Path(html), trial, freq, base)
        store = open_store(folder)
        if path is not None:
            attach_report(study, store, path, storage)
    except (ValueError, ArtifactError, CheckpointError, OSError) as exc:
        raise PublishError(str(exc)) from None
    try:
        if attach_best_checkpoint(study, store, base, storage) is not None:
            say(f"\nbest checkpoint of trial #{summary.best.number} attached to the study")
    except (ArtifactError, OSError) as exc:
        warn(f"\nwarning: best checkpoint not attached: {exc}")
    if path is not None:
        say(f"report written to {path.resolve()} and attached to the study")
    dashboard = shlex.join(["optuna-dashboard", storage, "--artifact-dir", str(folder)])
    say(f"see them with: {dashboard}")
