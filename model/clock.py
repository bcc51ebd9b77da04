"""Clock learning: the second training method, beside L=1.

Under the assignment's noise S(t) says nothing about t, so a frozen model beats predict-zero
(0.5) only as a clock started by the state reset and selected by the one-hot C. This method
trains the same ``SineLSTM`` to be that clock:

1. *grow*: each update draws fresh noise realisations (exact formula, a generator disjoint from
   every evaluation seed) and backpropagates in full from the zero state over the prefix [0, T)
   of every block. T starts short and grows by a factor whenever the smoothed prefix MSE is
   under a threshold; the lr shrinks with T.
2. *tune*: from the best weights by honest validation MSE, fresh Adam, full length, a linear
   warm-up then cosine decay.

The measured dead end is saturation: a slow block (1 Hz) whose prefix is a long monotone ramp
gets a constant-ish output from saturated units, and its gradient all but vanishes (14 of 15
measured runs without a glide, 5 seeds x 3 settings). ``glide_cycles`` avoids the ramp (each
block's grow target holds at least that many cycles, gliding down to its own frequency as T
grows); ``max_restarts`` starts over from new initial weights when a grow stage stalls anyway.

Every schedule is driven by update counts, so a run is a function of its config. The model
still reads one sample per step with its state carried, and is evaluated honestly
(``model.evaluate``) exactly as for L=1.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import torch

from model.data import DataConfig, SignalSet, mixed_signal
from model.engines import Weights, module_from_weights, weights_of
from model.evaluate import Evaluation, evaluate
from model.lstm import HIDDEN_SIZE, SineLSTM, build_model
from model.training import STOP_MAX_EPOCHS, STOP_NON_FINITE, EpochReport

METHOD = "clock"
STAGE_GROW = "grow"
STAGE_TUNE = "tune"
#: Mixed into the noise generator's seed so training noise never equals an evaluation set's
#: (those use ``default_rng(seed)`` with a plain integer seed).
NOISE_STREAM = 0xC10C


@dataclass(frozen=True)
class ClockConfig:
    """One clock-learning run; the defaults take about 10-12 minutes on one CPU core."""

    realisations: int = 4
    """Fresh noise realisations per frequency per grow update (batch = this x frequencies)."""
    prefix_start: int = 100
    """Initial prefix length T, in samples."""
    min_cycles: float = 0.0
    """Every block's prefix spans at least this many of its periods (so its target turns
    from the first update); T applies where longer. 0: every block uses T. (1.0 did worse in
    the one run measured: a whole cycle from scratch stayed near 0.3-0.4.)"""
    glide_cycles: float = 0.75
    """Grow stage only: block b's target is sin(2 pi f t) with f = max(f_b, glide_cycles *
    sample_rate / T), so every block's prefix holds at least this many cycles and a slow
    block's target glides down to its own frequency as T grows (an oscillator is tuned
    down instead of a ramp being learnt; 0 = off, targets are always the true sines)."""
    growth: float = 1.5
    """T is multiplied by this (capped at the block length) when the prefix is learnt."""
    growth_threshold: float = 0.01
    """T grows when the EMA of the prefix MSE falls below this."""
    ema: float = 0.9
    """Smoothing factor of that EMA (weight on the old value)."""
    ema_reset: bool = True
    """Restart the EMA after each growth, so T grows at most once per learnt prefix."""
    lr_scale: float = 3e-3
    """Grow-stage lr = lr_scale * min(1, (lr_ref_length / T) ** lr_power)."""
    lr_ref_length: int = 300
    """Prefix length up to which the grow lr is lr_scale."""
    lr_power: float = 0.75
    """How fast the grow lr falls with T beyond lr_ref_length."""
    clip: float = 1.0
    """Gradient-norm clip (global L2 norm over all parameters)."""
    balanced: bool = True
    """Weight each frequency's MSE by its share of the total (weights held constant)."""
    grow_updates: int = 2400
    """Updates in the grow stage (a multiple of updates_per_epoch)."""
    tune_updates: int = 600
    """Updates in the tune stage at full length (a multiple of updates_per_epoch)."""
    tune_realisations: int = 4
    """Realisations per frequency per tune update."""
    tune_lr_max: float = 5e-5
    """Tune lr after warm-up; it then follows a cosine down to tune_lr_min."""
    tune_lr_min: float = 1e-6
    """Tune lr at the last update."""
    tune_warmup: int = 50
    """Updates of linear warm-up from 0 to tune_lr_max (a fresh Adam jolts without it)."""
    max_restarts: int = 0
    """Grow stage: restart from new initial weights at most this many times when stalled."""
    restart_patience: int = 5
    """Stalled = this many epochs in a row with online loss above growth_threshold and mean
    gradient norm under restart_grad_norm (saturated units: the measured dead end)."""
    restart_grad_norm: float = 0.02
    """Mean gradient norm under which a grow epoch that has not learnt its prefix is stalled."""
    updates_per_epoch: int = 100
    """Updates per reported epoch: the unit of reports, validation and pruning."""
    hidden_size: int = HIDDEN_SIZE
    """LSTM hidden units (one layer)."""
    forget_bias: float = 0.0
    """Added to the forget gate's input bias after the default initialisation (a standard
    init for long memories; 0 keeps PyTorch's default; 1.0 was no better on 3 seeds)."""
    seed: int = 0
    """Seed of the weight initialisation and of the training noise."""

    def __post_init__(self) -> None:
        for name in ("realisations", "prefix_start", "tune_realisations", "updates_per_epoch",
                     "hidden_size", "lr_ref_length", "restart_patience"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("grow_updates", "tune_updates", "tune_warmup", "max_restarts"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
            budget = name in ("grow_updates", "tune_updates")
            if budget and getattr(self, name) % self.updates_per_epoch:
                raise ValueError(
                    f"{name} must be a multiple of updates_per_epoch "
                    f"({self.updates_per_epoch}), got {getattr(self, name)}"
                )
        if self.total_updates < 1:
            raise ValueError("grow_updates + tune_updates must be positive")
        if self.min_cycles < 0 or self.glide_cycles < 0:
            raise ValueError(f"min_cycles and glide_cycles must be >= 0, got "
                             f"{self.min_cycles}, {self.glide_cycles}")  # fmt: skip
        if self.growth <= 1.0:
            raise ValueError(f"growth must be > 1, got {self.growth}")
        if not (0.0 <= self.ema < 1.0):
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        for name in ("growth_threshold", "lr_scale", "clip", "tune_lr_max", "lr_power"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not (0.0 <= self.tune_lr_min <= self.tune_lr_max):
            raise ValueError(f"tune_lr_min must be in [0, tune_lr_max], got {self.tune_lr_min}")

    @property
    def total_updates(self) -> int:
        return self.grow_updates + self.tune_updates

    @property
    def epochs(self) -> int:
        return self.total_updates // self.updates_per_epoch

    def grow_lr(self, length: int) -> float:
        """Grow-stage lr for a batch of ``length`` steps."""
        return self.lr_scale * min(1.0, (self.lr_ref_length / length) ** self.lr_power)

    def target_frequencies(self, prefix: int, data: DataConfig, stage: str) -> tuple[float, ...]:
        """Frequencies of the training targets at prefix T (the true ones when tuning)."""
        if stage != STAGE_GROW or self.glide_cycles == 0:
            return data.frequencies
        low = self.glide_cycles * data.sample_rate / prefix
        return tuple(max(f, low) for f in data.frequencies)

    def block_prefixes(self, prefix: int, data: DataConfig) -> tuple[int, ...]:
        """Prefix of each block for the prefix T."""
        floor = [math.ceil(self.min_cycles * data.sample_rate / f) for f in data.frequencies]
        return tuple(min(data.samples, max(prefix, m)) for m in floor)

    def tune_lr(self, k: int) -> float:
        """lr of tune update k (0-based): linear warm-up, then cosine to tune_lr_min."""
        if k < self.tune_warmup:
            return self.tune_lr_max * (k + 1) / self.tune_warmup
        span = max(1, self.tune_updates - self.tune_warmup - 1)
        frac = min(1.0, (k - self.tune_warmup) / span)
        cos = 0.5 * (1.0 + math.cos(math.pi * frac))
        return self.tune_lr_min + (self.tune_lr_max - self.tune_lr_min) * cos

    def next_prefix(self, prefix: int, samples: int) -> int:
        return min(samples, max(prefix + 1, math.ceil(prefix * self.growth)))


@dataclass(frozen=True)
class ClockReport(EpochReport):
    """One epoch (``updates_per_epoch`` updates). ``online_loss`` is the mean training MSE of
    the epoch's updates on their prefixes while the weights moved; ``train_mse`` and ``val_mse``
    are honest (frozen weights, whole blocks); ``train_mse`` is NaN without a train set."""

    stage: str = STAGE_GROW
    prefix: int = 0
    """Prefix length T at the end of the epoch."""


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
    adam: dict
    """``torch.optim.Adam.state_dict()`` of the current stage."""
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
    stalled: int = 0
    """Grow epochs in a row that looked stalled."""
    history: tuple[ClockReport, ...] = ()
    stop_reason: str | None = None


def noise_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, NOISE_STREAM])


def draw_batch(
    data: DataConfig,
    prefix: int,
    realisations: int,
    rng: np.random.Generator,
    targets: tuple[float, ...] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (R * n_freq, prefix, 1 + n_freq) and targets (R * n_freq, prefix): R fresh sets'
    first ``prefix`` samples, S shared by the blocks of one realisation as in ``make_set``.
    Row r * n_freq + b is realisation r, block b. ``targets``: the targets' frequencies
    (default: the data's own)."""
    cut = replace(data, samples=prefix)
    n = data.n_freq
    s = np.stack([mixed_signal(cut, rng) for _ in range(realisations)])  # (R, prefix)
    x = np.zeros((realisations, n, prefix, 1 + n), dtype=np.float32)
    x[..., 0] = s[:, None, :]
    x[:, np.arange(n), :, 1 + np.arange(n)] = 1.0
    t = np.arange(prefix, dtype=np.float64) / data.sample_rate
    f = np.asarray(targets or data.frequencies, dtype=np.float64)[:, None]
    y = np.broadcast_to(np.sin(2.0 * np.pi * f * t), (realisations, n, prefix))
    return (torch.from_numpy(x.reshape(realisations * n, prefix, 1 + n)),
            torch.from_numpy(y.reshape(realisations * n, prefix).astype(np.float32)))  # fmt: skip


def prefix_mask(prefixes: tuple[int, ...], length: int) -> torch.Tensor:
    """(n_freq, length): 1 where step t is inside block b's prefix."""
    return (torch.arange(length)[None, :] < torch.tensor(prefixes)[:, None]).float()


def prefix_loss(out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, balanced: bool
                ) -> tuple[torch.Tensor, float]:  # fmt: skip
    """(loss to minimise, plain MSE), each block's MSE over its own prefix (``mask``).
    Balanced: mean_b w_b MSE_b, w_b = MSE_b / mean(MSE), the weights detached so they only
    steer, pushing on the worst frequency."""
    n_freq, length = mask.shape
    err = ((out - y) ** 2).view(-1, n_freq, length) * mask
    per_freq = err.sum(dim=(0, 2)) / (mask.sum(dim=1) * err.shape[0])
    plain = per_freq.mean()
    if not balanced:
        return plain, float(plain.detach())
    w = per_freq.detach() / plain.detach().clamp_min(1e-12)
    return (w * per_freq).mean(), float(plain.detach())


def _adam(model: SineLSTM) -> torch.optim.Adam:
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
    return model


def initial_state(config: ClockConfig, data: DataConfig) -> ClockState:
    model = initial_model(config, data)
    stage = STAGE_GROW if config.grow_updates else STAGE_TUNE
    prefix = config.prefix_start if config.grow_updates else data.samples
    return ClockState(config=config, epoch=0, updates=0, stage=stage,
                      prefix=min(prefix, data.samples), ema=math.inf, weights=weights_of(model),
                      adam=_adam(model).state_dict(),
                      rng=noise_rng(config.seed).bit_generator.state)  # fmt: skip


@dataclass
class ClockTraining:
    """Runs epochs of one clock config; ``state`` after any epoch is a checkpoint."""

    val_set: SignalSet
    data: DataConfig
    state: ClockState
    train_set: SignalSet | None = None
    model: SineLSTM = field(init=False)
    optimizer: torch.optim.Adam = field(init=False)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        s = self.state
        self.model = module_from_weights(s.weights, self.data.input_size, s.config.hidden_size)
        self.optimizer = _adam(self.model)
        self.optimizer.load_state_dict(s.adam)
        self.rng = noise_rng(s.config.seed)
        self.rng.bit_generator.state = s.rng

    @classmethod
    def start(cls, config: ClockConfig, val_set: SignalSet, data: DataConfig | None = None,
              train_set: SignalSet | None = None) -> ClockTraining:  # fmt: skip
        if data is None:
            data = DataConfig(samples=val_set.inputs.shape[1])
        return cls(val_set, data, initial_state(config, data), train_set)

    @property
    def finished(self) -> bool:
        return self.state.stop_reason is not None

    def epochs(self) -> Iterator[ClockReport]:
        """One report per epoch until the run stops; the caller may break at any time."""
        while not self.finished:
            yield self.run_epoch()

    def _update(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, lr: float
                ) -> tuple[float, float]:  # fmt: skip
        cfg = self.state.config
        self.model.train()
        out, _ = self.model(x, self.model.init_state(x.shape[0]))  # zero state at t = 0
        loss, plain = prefix_loss(out, y, mask, cfg.balanced)
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip))
        if not (math.isfinite(plain) and math.isfinite(norm)):
            return math.nan, norm  # not applied: the weights stay the last finite ones
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        return plain, norm

    def run_epoch(self) -> ClockReport:
        s, cfg, start = self.state, self.state.config, time.perf_counter()
        stage, prefix, ema, updates = s.stage, s.prefix, s.ema, s.updates
        losses, norms, lr, stop = [], [], 0.0, None
        for _ in range(cfg.updates_per_epoch):
            blocks = cfg.block_prefixes(prefix, self.data)
            if stage == STAGE_GROW:
                lr, reals = cfg.grow_lr(max(blocks)), cfg.realisations
            else:
                k = updates - s.attempt_start - cfg.grow_updates
                lr, reals = cfg.tune_lr(k), cfg.tune_realisations
            freqs = cfg.target_frequencies(prefix, self.data, stage)
            x, y = draw_batch(self.data, max(blocks), reals, self.rng, freqs)
            loss, norm = self._update(x, y, prefix_mask(blocks, max(blocks)), lr)
            if not math.isfinite(loss):
                stop = STOP_NON_FINITE
                break
            updates += 1
            losses.append(loss)
            norms.append(norm)
            if stage == STAGE_GROW:
                ema = loss if not math.isfinite(ema) else cfg.ema * ema + (1 - cfg.ema) * loss
                if ema < cfg.growth_threshold and prefix < self.data.samples:
                    prefix = cfg.next_prefix(prefix, self.data.samples)
                    ema = math.inf if cfg.ema_reset else ema
        val = evaluate(self.model, self.val_set)
        train = math.nan if self.train_set is None else evaluate(self.model, self.train_set).mse
        weights = weights_of(self.model)
        best, best_val, best_epoch = s.best_weights, s.best_val, s.best_epoch
        if val.mse < best_val:
            best, best_val, best_epoch = weights, val.mse, s.epoch + 1
        end_prefix, attempt, attempt_start, stalled = prefix, s.attempt, s.attempt_start, 0
        online = float(np.mean(losses)) if losses else math.nan
        if stage == STAGE_GROW and stop is None:
            quiet = norms and float(np.mean(norms)) < cfg.restart_grad_norm
            stalled = s.stalled + 1 if quiet and online > cfg.growth_threshold else 0
        if stalled >= cfg.restart_patience and attempt < cfg.max_restarts:
            # Saturated units barely move: start over from other initial weights.
            attempt, attempt_start, stalled = attempt + 1, updates, 0
            prefix, ema = cfg.prefix_start, math.inf
            self._load(weights_of(initial_model(cfg, self.data, attempt)))
            self.optimizer = _adam(self.model)
        done = updates - attempt_start
        if stop != STOP_NON_FINITE and stage == STAGE_GROW and done >= cfg.grow_updates:
            # Tune from the best weights so far, at full length, with a fresh Adam.
            stage, prefix = STAGE_TUNE, self.data.samples
            self._load(best if best is not None else weights)
            self.optimizer = _adam(self.model)
        if stop is None and done >= cfg.total_updates:
            stop = STOP_MAX_EPOCHS
        report = ClockReport(
            epoch=s.epoch + 1, online_loss=online,
            train_mse=train, val_mse=val.mse, val_per_freq=val.per_freq,
            grad_norm_mean=float(np.mean(norms)) if norms else math.nan,
            grad_norm_max=float(np.max(norms)) if norms else math.nan, lr=lr,
            seconds=time.perf_counter() - start, steps=len(losses), stage=s.stage,
            prefix=end_prefix, stop_reason=stop,
        )  # fmt: skip
        self.state = replace(
            s,
            epoch=s.epoch + 1,
            updates=updates,
            stage=stage,
            prefix=prefix,
            ema=ema,
            weights=weights_of(self.model),
            adam=copy.deepcopy(self.optimizer.state_dict()),
            rng=self.rng.bit_generator.state,
            best_weights=best,
            best_val=best_val,
            best_epoch=best_epoch,
            attempt=attempt,
            attempt_start=attempt_start,
            stalled=stalled,
            history=(*s.history, report),
            stop_reason=stop,
        )
        return report

    def _load(self, weights: Weights) -> None:
        with torch.no_grad():
            for name, p in self.model.state_dict().items():
                p.copy_(torch.from_numpy(np.array(weights[name])))

    def evaluate(self, data: SignalSet, weights: Weights | None = None) -> Evaluation:
        """Honest MSE of the current weights (or of ``weights``) on a whole set."""
        if weights is None:
            return evaluate(self.model, data)
        cfg = self.state.config
        return evaluate(module_from_weights(weights, data.inputs.shape[-1], cfg.hidden_size), data)


def state_to_dict(state: ClockState) -> dict[str, object]:
    """A ``torch.load(weights_only=True)``-readable dict; save it with
    ``model.checkpoint.atomic_save``."""

    def tensors(w: Weights | None) -> dict | None:
        return None if w is None else {k: torch.from_numpy(np.array(v)) for k, v in w.items()}

    d = {f.name: getattr(state, f.name) for f in fields(state)}
    d.update(method=METHOD, format=1, config=asdict(state.config),
             weights=tensors(state.weights), best_weights=tensors(state.best_weights),
             history=[asdict(r) for r in state.history])  # fmt: skip
    return d


def state_from_dict(d: dict) -> ClockState:
    if d.get("method") != METHOD or d.get("format") != 1:
        raise ValueError(f"not a clock checkpoint: {d.get('method')!r} {d.get('format')!r}")

    def arrays(t: dict | None) -> Weights | None:
        return None if t is None else {k: v.numpy().copy() for k, v in t.items()}

    history = tuple(ClockReport(**{**r, "val_per_freq": tuple(r["val_per_freq"])})
                    for r in d["history"])  # fmt: skip
    plain = {f.name: d[f.name] for f in fields(ClockState)}
    plain.update(config=ClockConfig(**d["config"]), weights=arrays(d["weights"]),
                 best_weights=arrays(d["best_weights"]), history=history)  # fmt: skip
    return ClockState(**plain)
