"""Files that survive a crash: atomic writes, and the ``.npz`` archive format (no pickled
code) of L=1 checkpoints and of model files. (The clock method's training state holds torch
optimizer state and goes through ``atomic_save``: a torch file, read back with
``weights_only=True``.)

Arrays are stored by name; everything else (config, schedule, history) as one JSON string in
the same archive. Reading needs numpy only, so a sweep worker never imports torch.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from model.params import Weights

FORMAT_VERSION = 2
_META = "__meta__"


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable or from another configuration."""


#: Test hook: seconds to sleep between writing the temporary file and renaming it, so that a
#: crash test can kill the process while a checkpoint is being written. Unset in normal use.
SLOW_SAVE_ENV = "LSTM_SWEEP_TEST_SLOW_SAVE"


def _test_pause() -> None:
    delay = os.environ.get(SLOW_SAVE_ENV)
    if delay:
        time.sleep(float(delay))


def atomic_write(data: bytes, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``: a crash
    leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _test_pause()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` through ``atomic_write``, for callers whose state holds torch objects
    (torch is imported here only, on demand)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(buf.getvalue(), path)


def pack(arrays: dict[str, np.ndarray], meta: dict) -> bytes:
    buf = io.BytesIO()
    # JSON has no inf/nan; Python's json writes them as Infinity/NaN and reads them back.
    np.savez(buf, **arrays, **{_META: np.array(json.dumps(meta))})
    return buf.getvalue()


def unpack(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != _META}
            meta = json.loads(str(z[_META]))
    except Exception as exc:  # missing, truncated, not an archive: all mean "not usable"
        raise CheckpointError(f"{path}: {type(exc).__name__}: {exc}") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    return arrays, meta


def prefixed(prefix: str, weights: Weights) -> dict[str, np.ndarray]:
    return {f"{prefix}/{k}": np.asarray(v, dtype=np.float32) for k, v in weights.items()}


def group(arrays: dict[str, np.ndarray], prefix: str) -> Weights:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
