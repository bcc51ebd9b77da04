"""L=1 training checkpoints: weights, Adam's moments, schedules and history in one ``.npz``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from model.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    atomic_write,
    group,
    pack,
    prefixed,
    unpack,
)
from model.l1.config import TrainConfig
from model.l1.engine import AdamState
from model.l1.schedule import EarlyStopping, PlateauSchedule
from model.l1.training import TrainState
from model.method import EpochReport


def save_state(state: TrainState, path: Path) -> None:
    arrays = {
        **prefixed("weights", state.weights),
        **prefixed("exp_avg", state.adam.exp_avg),
        **prefixed("exp_avg_sq", state.adam.exp_avg_sq),
    }
    if state.best_weights is not None:
        arrays.update(prefixed("best", state.best_weights))
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
    atomic_write(pack(arrays, meta), path)


def load_state(path: Path) -> TrainState:
    """Load a training checkpoint; any failure becomes a ``CheckpointError``."""
    arrays, d = unpack(path)
    try:
        history = tuple(
            EpochReport(**{**r, "val_per_freq": tuple(r["val_per_freq"])}) for r in d["history"]
        )
        best = group(arrays, "best")
        return TrainState(
            config=TrainConfig(**d["config"]),
            epoch=int(d["epoch"]),
            weights=group(arrays, "weights"),
            adam=AdamState(
                step=int(d["adam_step"]),
                exp_avg=group(arrays, "exp_avg"),
                exp_avg_sq=group(arrays, "exp_avg_sq"),
            ),
            plateau=PlateauSchedule(**d["plateau"]),
            early=EarlyStopping(**d["early"]),
            history=history,
            best_weights=best or None,
            stop_reason=d["stop_reason"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: incomplete checkpoint ({exc})") from exc
