"""Checkpoints of the L=1 method and model files: numpy ``.npz`` archives (no pickled code),
written atomically. (The clock method's training state holds torch optimizer state and goes
through ``atomic_save``: a torch file, read back with ``weights_only=True``.)

Arrays are stored by name; everything else (config, schedule, history) as one JSON string in
the same archive. Reading needs numpy only, so a sweep worker never imports torch.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from model.params import AdamState, Weights
from model.schedule import EarlyStopping, PlateauSchedule
from model.training import EpochReport, TrainConfig, TrainState, method_of

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


def _pack(arrays: dict[str, np.ndarray], meta: dict) -> bytes:
    buf = io.BytesIO()
    # JSON has no inf/nan; Python's json writes them as Infinity/NaN and reads them back.
    np.savez(buf, **arrays, **{_META: np.array(json.dumps(meta))})
    return buf.getvalue()


def _unpack(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != _META}
            meta = json.loads(str(z[_META]))
    except Exception as exc:  # missing, truncated, not an archive: all mean "not usable"
        raise CheckpointError(f"{path}: {type(exc).__name__}: {exc}") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    return arrays, meta


def _prefixed(prefix: str, weights: Weights) -> dict[str, np.ndarray]:
    return {f"{prefix}/{k}": np.asarray(v, dtype=np.float32) for k, v in weights.items()}


def _group(arrays: dict[str, np.ndarray], prefix: str) -> Weights:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}


def save_state(state: TrainState, path: Path) -> None:
    arrays = {
        **_prefixed("weights", state.weights),
        **_prefixed("exp_avg", state.adam.exp_avg),
        **_prefixed("exp_avg_sq", state.adam.exp_avg_sq),
    }
    if state.best_weights is not None:
        arrays.update(_prefixed("best", state.best_weights))
    meta = {
        "format": FORMAT_VERSION,
        "kind": "state",
        "config": asdict(state.config),
        "epoch": state.epoch,
        "adam_step": state.adam.step,
        "plateau": asdict(state.plateau),
        "early": asdict(state.early),
        "history": [asdict(r) for r in state.history],
        "stop_reason": state.stop_reason,
    }
    atomic_write(_pack(arrays, meta), path)


def load_state(path: Path) -> TrainState:
    """Load a training checkpoint; any failure becomes a ``CheckpointError``."""
    arrays, d = _unpack(path)
    try:
        history = tuple(
            EpochReport(**{**r, "val_per_freq": tuple(r["val_per_freq"])}) for r in d["history"]
        )
        best = _group(arrays, "best")
        return TrainState(
            config=TrainConfig(**d["config"]),
            epoch=int(d["epoch"]),
            weights=_group(arrays, "weights"),
            adam=AdamState(
                step=int(d["adam_step"]),
                exp_avg=_group(arrays, "exp_avg"),
                exp_avg_sq=_group(arrays, "exp_avg_sq"),
            ),
            plateau=PlateauSchedule(**d["plateau"]),
            early=EarlyStopping(**d["early"]),
            history=history,
            best_weights=best or None,
            stop_reason=d["stop_reason"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: incomplete checkpoint ({exc})") from exc


def save_model(weights: Weights, config: object, meta: dict, path: Path) -> None:
    """The deliverable: weights (``SineLSTM`` state-dict names), the config that made them, and
    what they scored. ``model.engines.module_from_weights`` turns it into a torch module."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in meta.items()}  # fmt: skip
    info = {"format": FORMAT_VERSION, "kind": "model", "method": method_of(config),
            "config": asdict(config), "meta": clean}  # fmt: skip
    atomic_write(_pack(_prefixed("weights", weights), info), path)


def load_model(path: Path) -> tuple[Weights, object, dict]:
    """Weights, the config that trained them (a ``TrainConfig``, or a ``ClockConfig`` for the
    clock method; both have ``hidden_size``), and what they scored."""
    arrays, d = _unpack(path)
    try:
        if d.get("method", "l1") == "l1":
            config: object = TrainConfig(**d["config"])
        else:
            from model.clock import ClockConfig

            config = ClockConfig(**d["config"])
        return _group(arrays, "weights"), config, dict(d["meta"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: incomplete model file ({exc})") from exc
