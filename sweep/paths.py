"""Where a study's checkpoints go: one folder inside the checkpoint folder, whatever the name.

A study name is any text (Optuna allows up to 512 characters); a folder name is not. A name
that is already a plain folder name is used as it is (so existing checkpoint folders keep
their place); any other name becomes a readable slug plus a short hash of the whole name, so
``../../escape``, ``.``, ``a/b`` or a 300-character name each get one folder of their own,
and two names never share one.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: Optuna stores a study name in a column of this many characters.
MAX_STUDY_NAME = 512
#: Longest folder name used as it is; well under the 255 bytes of common file systems.
_MAX_PLAIN = 64
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def study_folder_name(study_name: str) -> str:
    if len(study_name) <= _MAX_PLAIN and _PLAIN.match(study_name) and ".." not in study_name:
        return study_name
    digest = hashlib.sha256(study_name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    slug = _UNSAFE.sub("_", study_name).strip("._-")[:40] or "study"
    return f"{slug}-{digest}"


def study_folder(root: Path, study_name: str) -> Path:
    """``root/<folder of the study>``: always a direct child of ``root``."""
    return root / study_folder_name(study_name)
