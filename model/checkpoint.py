"""Checkpoints: written atomically, readable without pickled code (``weights_only``)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from model.engines import AdamState, Weights
from model.schedule import EarlyStopping, PlateauSchedule
from model.training import EpochReport, TrainConfig, TrainState

FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable or from another configuration."""


def _tensors(weights: Weights) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in weights.items()}


def _arrays(tensors: dict[str, torch.Tensor]) -> Weights:
    return {k: v.numpy().copy() for k, v in tensors.items()}


def atomic_save(obj: object, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``: a crash
    leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def state_to_dict(state: TrainState) -> dict[str, object]:
    return {
        "format": FORMAT_VERSION,
        "config": asdict(state.config),
        "epoch": state.epoch,
        "weights": _tensors(state.weights),
        "adam": {
            "step": state.adam.step,
            "exp_avg": _tensors(state.adam.exp_avg),
            "exp_avg_sq": _tensors(state.adam.exp_avg_sq),
        },
        "plateau": asdict(state.plateau),
        "early": asdict(state.early),
        "history": [asdict(r) for r in state.history],
        "best_weights": None if state.best_weights is None else _tensors(state.best_weights),
        "stop_reason": state.stop_reason,
    }


def state_from_dict(d: dict) -> TrainState:
    if d.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"unknown checkpoint format {d.get('format')!r}")
    history = tuple(
        EpochReport(**{k: (tuple(v) if k == "val_per_freq" else v) for k, v in r.items()})
        for r in d["history"]
    )
    return TrainState(
        config=TrainConfig(**d["config"]),
        epoch=int(d["epoch"]),
        weights=_arrays(d["weights"]),
        adam=AdamState(
            step=int(d["adam"]["step"]),
            exp_avg=_arrays(d["adam"]["exp_avg"]),
            exp_avg_sq=_arrays(d["adam"]["exp_avg_sq"]),
        ),
        plateau=PlateauSchedule(**d["plateau"]),
        early=EarlyStopping(**d["early"]),
        history=history,
        best_weights=None if d["best_weights"] is None else _arrays(d["best_weights"]),
        stop_reason=d["stop_reason"],
    )


def save_state(state: TrainState, path: Path) -> None:
    atomic_save(state_to_dict(state), path)


def load_state(path: Path) -> TrainState:
    """Load a training checkpoint; any failure becomes a ``CheckpointError``."""
    try:
        d = torch.load(path, weights_only=True)
        return state_from_dict(d)
    except CheckpointError:
        raise
    except Exception as exc:  # corrupt, truncated, missing keys: all mean "not usable"
        raise CheckpointError(f"{path}: {type(exc).__name__}: {exc}") from exc


def save_model(weights: Weights, config: TrainConfig, meta: dict, path: Path) -> None:
    """The deliverable: weights, the config that made them, and what they scored."""
    atomic_save({"format": FORMAT_VERSION, "config": asdict(config), "weights": _tensors(weights),
                 "meta": meta}, path)  # fmt: skip


def load_model(path: Path) -> tuple[Weights, TrainConfig, dict]:
    try:
        d = torch.load(path, weights_only=True)
        return _arrays(d["weights"]), TrainConfig(**d["config"]), dict(d["meta"])
    except Exception as exc:
        raise CheckpointError(f"{path}: {type(exc).__name__}: {exc}") from exc
