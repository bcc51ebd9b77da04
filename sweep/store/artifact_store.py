"""The artifact folder's store: Optuna's ``FileSystemArtifactStore``, but each file written
whole or not at all.

Optuna's store opens the artifact's final path and copies into it: on a full disk it left the
file half-written (0 and 49,152 bytes were seen), with no metadata naming it, and the error
(an ``OSError`` raised from the middle of a trial's delivery) was reported as the checkpoint
folder's. Here the bytes go to a temporary file beside the final one, renamed into place once
complete; a failed write removes it and is raised as ``ArtifactWriteError`` naming the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from optuna.artifacts import FileSystemArtifactStore


class ArtifactWriteError(OSError):
    """An artifact could not be written to the artifact folder (``filename``)."""


class AtomicArtifactStore(FileSystemArtifactStore):
    def __init__(self, base_path: str | Path) -> None:
        super().__init__(base_path)
        self.folder = Path(base_path)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        final = self.folder / artifact_id
        if final.resolve().parent != self.folder.resolve():
            raise ValueError(f"invalid artifact id {artifact_id!r}")  # as Optuna's store
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{artifact_id}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(content_body, f)
            os.replace(tmp, final)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise ArtifactWriteError(exc.errno, exc.strerror, str(self.folder)) from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
