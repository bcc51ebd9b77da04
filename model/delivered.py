"""The deliverable: a model file (weights, the config that trained them, what they scored),
whichever method trained it. Torch-free; ``model.kernels.evaluate`` scores it on any set."""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from model import registry
from model.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    atomic_write,
    group,
    pack,
    prefixed,
    unpack,
)
from model.params import Weights


def save_model(weights: Weights, config: Any, meta: dict, path: Path) -> None:
    """Weights (``SineLSTM`` state-dict names), the config that made them, and what they
    scored. ``model.lstm.module_from_weights`` turns them into a torch module."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in meta.items()}  # fmt: skip
    info = {"format": FORMAT_VERSION, "kind": "model", "method": config.METHOD,
            "config": asdict(config), "meta": clean}  # fmt: skip
    atomic_write(pack(prefixed("weights", weights), info), path)


def load_model(path: Path) -> tuple[Weights, Any, dict]:
    """Weights, the config that trained them (its method's config class; every one has
    ``hidden_size``), and what they scored. A config option the method no longer has (the file
    is older than its removal) is left out of the config and listed in the meta under
    ``"options_no_longer_known"``: the weights are what they were, and score the same."""
    arrays, d = unpack(path)
    try:
        # Files written before methods were recorded are L=1 models.
        config_class = registry.get(d.get("method", registry.DEFAULT)).config_class
        known = {f.name for f in fields(config_class)}
        config, meta = dict(d["config"]), dict(d["meta"])
        gone = {k: config.pop(k) for k in sorted(set(config) - known)}
        if gone:
            meta["options_no_longer_known"] = gone
        return group(arrays, "weights"), config_class(**config), meta
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: incomplete model file ({exc})") from exc
