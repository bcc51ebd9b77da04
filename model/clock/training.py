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
3. *polish* (where configured): from the best weights again, L-BFGS on the full-length loss,
   which is deterministic when S is ignored (``model.clock.polish``).

The measured dead end is saturation: a slow block (1 Hz) whose prefix is a long monotone ramp
gets a constant-ish output from saturated units, and its gradient all but vanishes (14 of 15
measured runs without a glide, 5 seeds x 3 settings). ``glide_cycles`` avoids the ramp (each
block's grow target holds at least that many cycles, gliding down to its own frequency as T
grows); ``max_restarts`` starts over from new initial weights when a grow stage stalls anyway.

Every schedule is driven by update counts, so a run is a function of its config. The model
still reads one sample per step with its state carried, and is evaluated honestly
(``model.kernels``, the same forward pass L=1 is scored with).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from model.clock import polish_rules as rules
from model.clock.batch import (
    S_COLUMN,
    draw_batch,
    error_sums,
    noise_rng,
    prefix_loss,
    prefix_mask,
)
from model.clock.config import STAGE_GROW, STAGE_POLISH, STAGE_TUNE, ClockConfig
from model.clock.memory import keep_freed_memory, release_freed_memory
from model.clock.polish import Polisher, lbfgs_for, prefix_batch
from model.clock.state import (
    ClockReport,
    ClockState,
    adam_for,
    initial_model,
    initial_state,
)
from model.data import DataConfig, SignalSet
from model.evaluate import evaluate
from model.lstm import SineLSTM, module_from_weights, weights_of
from model.method import (
    STOP_MAX_EPOCHS,
    STOP_NON_FINITE,
    LeadCheck,
    StallCheck,
)
from model.params import Evaluation, Weights


@dataclass(frozen=True)
class _Progress:
    """Where the updates of one epoch left the grow schedule."""

    prefix: int
    ema: float
    updates: int
    lr: float
    losses: tuple[float, ...]
    norms: tuple[float, ...]
    non_finite: bool
    steps: int = -1
    """Optimizer steps (-1: one per loss, as in grow and tune)."""
    converged: bool = False


@dataclass
class ClockTraining:
    """Runs epochs of one clock config; ``state`` after any epoch is a checkpoint.
    ``train_set`` may be None (its honest MSE is then NaN): the method trains on fresh noise."""

    train_set: SignalSet | None
    val_set: SignalSet
    state: ClockState
    data: DataConfig
    stall_check: StallCheck | None = None
    """The sweep's stall rule (``model.method.StallCheck``): a grow attempt it calls stalled
    starts over while restarts are left. None: attempts never start over."""
    leads: LeadCheck | None = None
    """Whether the run leads its study (``model.method.LeadCheck``): a polish that has met its
    target or budget goes on while it does, up to polish_leader_evaluations. None: never."""
    model: SineLSTM = field(init=False)
    optimizer: torch.optim.Optimizer = field(init=False)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        keep_freed_memory()
        # A worker's runs follow one another: what the last one's heap kept, numba loaded
        # beside it, crept from 547 to 595 MB over run P's trials (bench/results/memory.md).
        release_freed_memory()
        s = self.state
        self.model = module_from_weights(s.weights, self.data.input_size, s.config.hidden_size)
        self.optimizer = self._optimizer_for(s.stage)
        self.optimizer.load_state_dict(s.optimizer)
        self.rng = noise_rng(s.config.seed)
        self.rng.bit_generator.state = s.rng

    def _optimizer_for(self, stage: str) -> torch.optim.Optimizer:
        if stage == STAGE_POLISH:
            return lbfgs_for(self.model, self.state.config.polish_history)
        return adam_for(self.model)

    @classmethod
    def start(cls, config: ClockConfig, train_set: SignalSet | None, val_set: SignalSet,
              data: DataConfig | None = None, stall_check: StallCheck | None = None,
              leads: LeadCheck | None = None) -> ClockTraining:  # fmt: skip
        if data is None:
            data = DataConfig(samples=val_set.inputs.shape[1])
        return cls(train_set, val_set, initial_state(config, data), data, stall_check, leads)

    @property
    def finished(self) -> bool:
        return self.state.stop_reason is not None

    def epochs(self) -> Iterator[ClockReport]:
        """One report per epoch until the run stops; the caller may break at any time."""
        while not self.finished:
            yield self.run_epoch()

    def _update(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, lr: float
                ) -> tuple[float, float, float]:  # fmt: skip
        cfg = self.state.config
        self.model.train()
        compiled = self.state.stage == STAGE_GROW and cfg.grow_engine == "compiled"
        sums = error_sums(self.model, x, y, mask, compiled)  # the tune stage: torch
        loss, plain, worst = prefix_loss(sums, mask, cfg.balanced)
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        if cfg.ignore_s:  # S's weights stay zero: Adam never sees a gradient for them
            self.model.lstm.weight_ih_l0.grad[:, S_COLUMN] = 0.0
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip))
        if not (math.isfinite(plain) and math.isfinite(norm)):
            return math.nan, math.nan, norm  # not applied: the weights stay the last finite ones
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        return plain, worst, norm

    def _run_updates(self) -> _Progress:
        """The epoch's updates; in the grow stage T grows whenever its prefix is learnt."""
        s, cfg = self.state, self.state.config
        stage, prefix, ema, updates = s.stage, s.prefix, s.ema, s.updates
        losses: list[float] = []
        norms: list[float] = []
        lr = 0.0
        lbfgs = cfg.grow_lbfgs if stage == STAGE_GROW and self._lbfgs_due() else 0
        for _ in range(cfg.updates_per_epoch - lbfgs):
            blocks = cfg.block_prefixes(prefix, self.data)
            if stage == STAGE_GROW:
                lr, reals = cfg.grow_lr(max(blocks)), cfg.realisations
            else:
                k = updates - s.tune_start
                lr, reals = cfg.tune_lr(k), cfg.tune_realisations
            freqs = cfg.target_frequencies(prefix, self.data, stage)
            x, y = draw_batch(self.data, max(blocks), reals, self.rng, freqs)
            loss, worst, norm = self._update(x, y, prefix_mask(blocks, max(blocks)), lr)
            if not math.isfinite(loss):
                return _Progress(prefix, ema, updates, lr, tuple(losses), tuple(norms), True)
            updates += 1
            losses.append(loss)
            norms.append(norm)
            if stage == STAGE_GROW:
                gate = worst if cfg.growth_gate == "worst" else loss
                ema = gate if not math.isfinite(ema) else cfg.ema * ema + (1 - cfg.ema) * gate
                if ema < cfg.growth_threshold and prefix < self.data.samples:
                    prefix = cfg.next_prefix(prefix, self.data.samples)
                    ema = math.inf if cfg.ema_reset else ema
                    if cfg.grow_ends_at_once and self._grown(prefix):  # the epoch ends too
                        lbfgs = 0
                        break
        if lbfgs:
            loss, norm = self._grow_lbfgs(prefix, lbfgs)
            updates += lbfgs
            losses.append(loss)
            norms.append(norm)
            if loss < cfg.growth_threshold and prefix < self.data.samples:
                prefix = cfg.next_prefix(prefix, self.data.samples)
                ema = math.inf if cfg.ema_reset else ema
        return _Progress(prefix, ema, updates, lr, tuple(losses), tuple(norms), False,
                         steps=updates - s.updates)  # fmt: skip

    def _grown(self, prefix: int) -> bool:
        """Whether T = ``prefix`` ends the grow stage (tune_when_grown, at grown_at)."""
        cfg = self.state.config
        return cfg.tune_when_grown and prefix >= cfg.grown_at(self.data.samples)

    def _lbfgs_due(self) -> bool:
        """Whether this grow epoch ends with an L-BFGS call: at T above grow_lbfgs_min_prefix,
        always, or after T has been flat for grow_lbfgs_after whole epochs of the current
        attempt."""
        s, after = self.state, self.state.config.grow_lbfgs_after
        if s.prefix <= s.config.grow_lbfgs_min_prefix:
            return False
        if after == 0:
            return True
        same = 0  # trailing epochs of this attempt that ended at today's T
        for r in reversed(s.history):
            if r.stage != STAGE_GROW or r.attempt != s.attempt or r.prefix != s.prefix:
                break
            same += 1
        return same > after  # the first of them may be the one in which T grew

    def _grow_lbfgs(self, prefix: int, evaluations: int) -> tuple[float, float]:
        """One L-BFGS call of ``evaluations`` on prefix T's plain MSE (deterministic: S is
        ignored), from a fresh history; the prefix MSE and gradient norm it leaves. A call
        that leaves non-finite weights is undone."""
        cfg = self.state.config
        blocks = cfg.block_prefixes(prefix, self.data)
        batch = prefix_batch(self.data, blocks, cfg.target_frequencies(prefix, self.data,
                                                                        STAGE_GROW))  # fmt: skip
        before = weights_of(self.model)
        lbfgs = lbfgs_for(self.model, cfg.polish_history)
        polisher = Polisher(self.model, lbfgs, self.data, cfg.ignore_s, batch,
                            compiled=cfg.grow_engine == "compiled")  # fmt: skip
        self.model.train()
        step = polisher.run(evaluations)
        with torch.no_grad():
            loss = float(polisher.loss())
        if not (math.isfinite(loss) and all(bool(torch.isfinite(p).all())
                                            for p in self.model.parameters())):  # fmt: skip
            self._load(before)
            with torch.no_grad():
                loss = float(polisher.loss())
        return loss, step.grad_norm

    def _run_polish(self) -> _Progress:
        """One L-BFGS call of updates_per_epoch evaluations (each counted as an update)."""
        s, cfg = self.state, self.state.config
        release_freed_memory()  # what torch's passes left: the polish needs little of it
        polisher = Polisher(self.model, self.optimizer, self.data, cfg.ignore_s,
                            compiled=cfg.polish_engine == "compiled")  # fmt: skip
        step = polisher.run(cfg.updates_per_epoch)
        # A line search can step onto non-finite weights while its lowest loss stays finite.
        weights_finite = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
        finite = weights_finite and math.isfinite(step.lowest_loss)
        return _Progress(s.prefix, s.ema, s.updates + step.evaluations, 1.0,
                         (step.lowest_loss,), (step.grad_norm,), not finite,
                         steps=step.evaluations, converged=step.converged)  # fmt: skip

    def run_epoch(self) -> ClockReport:
        s, cfg, start = self.state, self.state.config, time.perf_counter()
        p = self._run_polish() if s.stage == STAGE_POLISH else self._run_updates()
        stop = STOP_NON_FINITE if p.non_finite else None
        # torch's forward pass, not the compiled one (model.kernels): the same numbers to
        # ~1e-9 at 1.5x its cost (about 11 ms a set), and a clock worker that never loads numba
        # peaks ~120 MB lower (bench/results/memory.md).
        weights = weights_of(self.model)
        val = _honest(weights, self.val_set)
        train = self._train_mse(weights, val)
        best, best_val, best_epoch = s.best_weights, s.best_val, s.best_epoch
        if val.mse < best_val:
            best, best_val, best_epoch = weights, val.mse, s.epoch + 1
        online = float(np.mean(p.losses)) if p.losses else math.nan
        stage, prefix, ema = s.stage, p.prefix, p.ema
        attempt, attempt_start, tune_start = s.attempt, s.attempt_start, s.tune_start
        polish_start = s.polish_start
        report = ClockReport(
            epoch=s.epoch + 1, online_loss=online,
            train_mse=train, val_mse=val.mse, val_per_freq=val.per_freq,
            grad_norm_mean=float(np.mean(p.norms)) if p.norms else math.nan,
            grad_norm_max=float(np.max(p.norms)) if p.norms else math.nan, lr=p.lr,
            seconds=0.0, steps=len(p.losses) if p.steps < 0 else p.steps, stage=s.stage,
            prefix=p.prefix, attempt=s.attempt, judged=s.stage != STAGE_GROW,
        )  # fmt: skip
        stalled = stop is None and s.stage == STAGE_GROW and self._stalled(report)
        if stalled and cfg.stall_rescue and p.updates - attempt_start < cfg.grow_updates:
            report = self._rescue(report)
            stalled = not report.rescued
            if report.rescued:
                prefix, ema = report.prefix, math.inf if cfg.ema_reset else ema
        restarted = stalled and attempt < cfg.max_restarts
        if restarted:
            # Saturated units barely move, or a block never started: start over from other
            # initial weights, where the sweep's stall rule would stop the attempt (the
            # pruner leaves an epoch that ended an attempt alone).
            attempt, attempt_start = attempt + 1, p.updates
            prefix, ema = cfg.prefix_start, math.inf
            self._load(weights_of(initial_model(cfg, self.data, attempt)))
            self.optimizer = adam_for(self.model)
        done = p.updates - attempt_start
        grown = self._grown(prefix)
        if stop is None and stage == STAGE_GROW and (done >= cfg.grow_updates or grown):
            # Tune from the best weights so far, at full length, with a fresh Adam.
            stage, prefix, tune_start = STAGE_TUNE, self.data.samples, p.updates
            self._load(best if best is not None else weights)
            self.optimizer = adam_for(self.model)
        if stop is None and stage == STAGE_TUNE and p.updates - tune_start >= cfg.tune_updates:
            if cfg.polish_evaluations:
                # Polish from the best weights so far, with a fresh L-BFGS history.
                stage, polish_start = STAGE_POLISH, p.updates
                self._load(best if best is not None else weights)
                self.optimizer = self._optimizer_for(stage)
            else:
                stop = STOP_MAX_EPOCHS
        leading = False
        if s.stage == STAGE_POLISH:
            spent = p.updates - polish_start
            report = replace(report, stage_steps=spent, converged=p.converged)
            if stop is None:
                lead = None if self.leads is None else self._leads(val.mse)
                stop = rules.polish_stop(cfg, val.mse, spent, p.converged, lead)
                leading = stop is None and rules.past_goal(cfg, val.mse, spent)
        report = replace(report, seconds=time.perf_counter() - start, restarted=restarted,
                         stop_reason=stop, leading=leading)  # fmt: skip
        self.state = replace(
            s, epoch=s.epoch + 1, updates=p.updates, stage=stage, prefix=prefix, ema=ema,
            weights=weights_of(self.model),
            optimizer=copy.deepcopy(self.optimizer.state_dict()),
            rng=self.rng.bit_generator.state, best_weights=best, best_val=best_val,
            best_epoch=best_epoch, attempt=attempt, attempt_start=attempt_start,
            tune_start=tune_start, polish_start=polish_start,
            history=(*s.history, report),
            stop_reason=stop,
        )  # fmt: skip
        return report

    def _rescue(self, report: ClockReport) -> ClockReport:
        """The stall rule fired at ``report``'s T: one L-BFGS call of ``stall_rescue``
        evaluations on that prefix. Most stalls are flat regions that curvature-scaled steps
        leave and Adam does not (bench/results/grow_rate.md: 9 of 11 probed T = 150 stalls
        went under the gate in 300 evaluations, ~2 CPU-s). The report with T grown when it
        did; the weights it ends with either way (a restart replaces them)."""
        cfg = self.state.config
        loss, _ = self._grow_lbfgs(report.prefix, cfg.stall_rescue)
        steps = report.steps + cfg.stall_rescue
        if loss < cfg.growth_threshold:
            grown = cfg.next_prefix(report.prefix, self.data.samples)
            return replace(report, prefix=grown, steps=steps, rescued=True)
        return replace(report, steps=steps)

    def _leads(self, val_mse: float) -> Callable[[], bool]:
        """Whether the run leads its study, by its goal MSE (asked only past its goal)."""
        leads = self.leads
        assert leads is not None
        return lambda: leads(rules.goal_mse(self.state.config, self.state.history, val_mse))

    def _stalled(self, latest: ClockReport) -> bool:
        """Whether the sweep's stall rule calls the current attempt stalled after ``latest``,
        its newest grow epoch (the attempt's earlier ones are in the history)."""
        if self.stall_check is None:
            return False
        s = self.state
        grow = [r for r in s.history if r.attempt == s.attempt and r.stage == STAGE_GROW]
        last_grow_epoch = s.config.grow_updates // s.config.updates_per_epoch
        # Grown at grown_at: an epoch that took T there ends the grow stage, however its
        # weights score beyond that prefix (the sweep's pruner reads the same length).
        grown = s.config.grown_at(self.data.samples)
        return self.stall_check([*grow, latest], grown, last_grow_epoch) is not None

    def _train_mse(self, weights: Weights, val: Evaluation) -> float:
        if self.train_set is None:
            return math.nan
        if self.state.config.ignore_s:
            # S's weights are exactly zero, so the predictions do not depend on the noise and
            # the sets differ only in it: the train set scores the validation set's MSE, bit
            # for bit. Evaluating it again cost a pass over a whole set every epoch.
            return val.mse
        return _honest(weights, self.train_set).mse

    def _load(self, weights: Weights) -> None:
        with torch.no_grad():
            for name, p in self.model.state_dict().items():
                p.copy_(torch.from_numpy(np.array(weights[name])))

    def evaluate(self, data: SignalSet, weights: Weights | None = None) -> Evaluation:
        """Honest MSE of the current weights (or of ``weights``) on a whole set."""
        return _honest(weights_of(self.model) if weights is None else weights, data)


def _honest(weights: Weights, data: SignalSet) -> Evaluation:
    """Honest MSE of ``weights`` on a whole set (frozen, state reset at each block), in torch."""
    hidden = weights["lstm.weight_hh_l0"].shape[1]
    return evaluate(module_from_weights(weights, data.inputs.shape[-1], hidden), data)
