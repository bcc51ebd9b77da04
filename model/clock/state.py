"""A clock run's checkpointable state, its per-epoch report, its initial weights, and its file
format (a torch file, since it holds ``torch.optim.Adam`` state)."""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import CheckpointError, atomic_save
from model.clock import polish_rules
from model.clock.batch import S_COLUMN, noise_rng
from model.clock.config import STAGE_GROW, STAGE_POLISH, STAGE_TUNE, ClockConfig
from model.clock.polish import lbfgs_for
from model.data import DataConfig
from model.lstm import SineLSTM, build_model, weights_of
from model.method import STOP_MAX_EPOCHS, STOP_TARGET, EpochReport
from model.params import Weights

FORMAT = 1


@dataclass(frozen=True)
class ClockReport(EpochReport):
    """One epoch (``updates_per_epoch`` updates). ``online_loss`` is the mean training MSE of
    the epoch's updates on their prefixes while the weights moved; ``train_mse`` and ``val_mse``
    are honest (frozen weights, whole blocks); ``train_mse`` is NaN without a train set."""

    stage: str = STAGE_GROW
    prefix: int = 0
    """Prefix length T at the end of the epoch."""
    attempt: int = 0
    """The attempt (0, then one more per restart) whose updates the epoch ran."""
    restarted: bool = False
    """The attempt ended with this epoch: the next one starts over from other initial
    weights."""
    rescued: bool = False
    """The stall rule fired in this epoch and an L-BFGS call on the stalled prefix
    (``ClockConfig.stall_rescue``) took it under the growth gate: T grew instead of the attempt
    ending (``prefix`` is the grown T)."""
    leading: bool = False
    """A polish epoch after which the run went on only because it led its study (it had met
    polish_target or spent polish_evaluations): the leader's longer budget."""
    judged: bool = False
    """A tune epoch: its honest MSE is the plan's rules' to judge (a grow epoch's is meant to
    swing)."""
    stage_steps: int = 0
    """A polish epoch: the stage's loss+gradient evaluations so far, this epoch's included
    (what its budget counts; 0 in other stages and in checkpoints written before)."""
    converged: bool = False
    """A polish epoch whose L-BFGS call found no further descent (False in checkpoints
    written before): a leader would gain nothing by going on from it."""


@dataclass(frozen=True)
class ClockState:
    """Everything needed to continue a run exactly where it stopped."""

    config: ClockConfig
    epoch: int
    updates: int
    stage: str
    prefix: int
    ema: float
    weights: Weights
    optimizer: dict
    """``state_dict()`` of the current stage's optimizer: Adam while growing and tuning,
    L-BFGS (its history included) while polishing."""
    rng: dict
    """``bit_generator.state`` of the noise generator."""
    best_weights: Weights | None = None
    best_val: float = math.inf
    best_epoch: int = 0
    """Epoch whose end gave ``best_weights`` (0: none yet)."""
    attempt: int = 0
    """Restarts so far; the stage budgets count from ``attempt_start``."""
    attempt_start: int = 0
    """Update count at which the current attempt began."""
    tune_start: int | None = None
    """Update count at which the tune stage began (None: still growing)."""
    polish_start: int | None = None
    """Update count at which the polish stage began (None: not polishing yet); a polish
    evaluation counts as an update."""
    history: tuple[ClockReport, ...] = ()
    stop_reason: str | None = None


def adam_for(model: SineLSTM) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=0.0, foreach=False)


def attempt_seed(seed: int, attempt: int) -> int:
    """Initialisation seed of restart ``attempt`` (attempt 0 is ``seed`` itself)."""
    if attempt == 0:
        return seed
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1)[0])


def initial_model(config: ClockConfig, data: DataConfig, attempt: int = 0) -> SineLSTM:
    seed = attempt_seed(config.seed, attempt)
    model = build_model(data.input_size, config.hidden_size, seed)
    h = config.hidden_size
    with torch.no_grad():  # gate order in nn.LSTM: input, forget, cell, output
        model.lstm.bias_ih_l0[h : 2 * h] += config.forget_bias
        if config.ignore_s:
            model.lstm.weight_ih_l0[:, S_COLUMN] = 0.0
    return model


def initial_state(config: ClockConfig, data: DataConfig) -> ClockState:
    model = initial_model(config, data)
    if config.grow_updates:
        stage, tune_start, polish_start = STAGE_GROW, None, None
    elif config.tune_updates:
        stage, tune_start, polish_start = STAGE_TUNE, 0, None
    else:  # a polish of given weights (bench.polish starts there)
        stage, tune_start, polish_start = STAGE_POLISH, 0, 0
    prefix = config.prefix_start if config.grow_updates else data.samples
    optimizer = (
        lbfgs_for(model, config.polish_history) if stage == STAGE_POLISH else (adam_for(model))
    )
    return ClockState(config=config, epoch=0, updates=0, stage=stage, tune_start=tune_start,
                      polish_start=polish_start, prefix=min(prefix, data.samples), ema=math.inf,
                      weights=weights_of(model), optimizer=optimizer.state_dict(),
                      rng=noise_rng(config.seed).bit_generator.state)  # fmt: skip


def reopened(state: ClockState) -> ClockState | None:
    """``state`` as the study's leader would have it had it led when the run stopped: a polish
    stopped at its goal (target met or budget spent) with the leader's budget left goes on
    from there, its optimizer's history and all, so the numbers are the ones an unbroken
    leader gets. Unfinished: ``state`` itself. None: nothing a leader could add (another
    stage, a polish that converged or was given up out of reach, the leader's budget or
    target reached)."""
    if state.stop_reason is None:
        return state
    cfg = state.config
    last = state.history[-1] if state.history else None
    if (
        last is None
        or state.stage != STAGE_POLISH
        or state.polish_start is None
        or last.converged
        or state.stop_reason not in (STOP_TARGET, STOP_MAX_EPOCHS)
        or polish_rules.leader_done(cfg, last.val_mse, state.updates - state.polish_start)
    ):
        return None
    last = replace(last, stop_reason=None, leading=True)
    return replace(state, stop_reason=None, history=(*state.history[:-1], last))


def state_to_dict(state: ClockState) -> dict[str, object]:
    """A ``torch.load(weights_only=True)``-readable dict; save it with
    ``model.checkpoint.atomic_save``."""

    def tensors(w: Weights | None) -> dict | None:
        return None if w is None else {k: torch.from_numpy(np.array(v)) for k, v in w.items()}

    d = {f.name: getattr(state, f.name) for f in fields(state)}
    d.update(method=ClockConfig.METHOD, format=FORMAT, config=asdict(state.config),
             weights=tensors(state.weights), best_weights=tensors(state.best_weights),
             history=[asdict(r) for r in state.history])  # fmt: skip
    return d


def state_from_dict(d: dict) -> ClockState:
    if d.get("method") != ClockConfig.METHOD or d.get("format") != FORMAT:
        raise ValueError(f"not a clock checkpoint: {d.get('method')!r} {d.get('format')!r}")

    def arrays(t: dict | None) -> Weights | None:
        return None if t is None else {k: v.numpy().copy() for k, v in t.items()}

    history = tuple(ClockReport(**{**r, "val_per_freq": tuple(r["val_per_freq"])})
                    for r in d["history"])  # fmt: skip
    # A field added since the file was written takes its default (a tune stage then began
    # where the grow budget ended, as it always did before tune_start existed).
    plain = {f.name: d[f.name] for f in fields(ClockState) if f.name in d}
    if "adam" in d:  # written before the polish stage, when the only optimizer was Adam
        plain["optimizer"] = d["adam"]
    if "tune_start" not in d and d["stage"] == STAGE_TUNE:
        plain["tune_start"] = d["attempt_start"] + d["config"]["grow_updates"]
    # A config field removed since (the trainer's own copy of the stall rule's values, before
    # it received the sweep's rule) is dropped: it no longer changes what a run does.
    known = {f.name for f in fields(ClockConfig)}
    config = ClockConfig(**{k: v for k, v in d["config"].items() if k in known})
    plain.update(config=config, weights=arrays(d["weights"]),
                 best_weights=arrays(d["best_weights"]), history=history)  # fmt: skip
    return ClockState(**plain)


def save(state: ClockState, path: Path) -> None:
    atomic_save(state_to_dict(state), path)


def load(path: Path) -> ClockState:
    """A clock checkpoint; any failure is a ``CheckpointError``."""
    try:
        return state_from_dict(torch.load(io.BytesIO(Path(path).read_bytes()), weights_only=True))
    except Exception as exc:  # missing, truncated, another format: all mean "not usable"
        raise CheckpointError(f"{path}: {type(exc).__name__}: {exc}") from exc
