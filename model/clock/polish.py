"""The polish stage: L-BFGS on the full-length loss of a grown clock.

With ``ignore_s`` the input weights of S are exactly zero, so the model's output is a function
of t and C only, and the full-length training loss over the four blocks is a smooth,
deterministic function of the weights: the same number as the honest MSE on any set, with no
noise in its gradient. A first-order method with a small fixed lr (the tune stage) converges
slowly on such a problem; a quasi-Newton method with a line search is built for it
(bench/results/polish.md measures both on grown clocks).

One polish epoch is one ``LBFGS.step`` call with a budget of loss+gradient evaluations. The
optimizer's history is carried from epoch to epoch in its ``state_dict`` (which the checkpoint
holds), so a run continued from a checkpoint computes the same numbers as one never stopped.
When a call stops short of its budget (the line search found no descent along the
quasi-Newton direction), the history is dropped and the call made again from steepest descent;
a stop from a fresh history means no further progress is to be had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from model.clock.batch import S_COLUMN, error_sums, prefix_loss
from model.data import DataConfig
from model.lstm import SineLSTM

#: Inputs, targets and the prefix mask of one deterministic problem (``prefix_batch``).
PrefixBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

#: Line-search evaluations LBFGS may spend on one iteration (torch's default for strong Wolfe).
MAX_LINE_SEARCH = 25


def full_length_batch(data: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (n_freq, samples, 1 + n_freq) with S = 0 (its weights are zero, so any S gives
    the same output) and the true targets (n_freq, samples)."""
    n, length = data.n_freq, data.samples
    x = np.zeros((n, length, 1 + n), dtype=np.float32)
    x[np.arange(n), :, 1 + np.arange(n)] = 1.0
    t = np.arange(length, dtype=np.float64) / data.sample_rate
    f = np.asarray(data.frequencies, dtype=np.float64)[:, None]
    y = np.sin(2.0 * np.pi * f * t).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def prefix_batch(data: DataConfig, prefixes: tuple[int, ...], frequencies: tuple[float, ...]
                 ) -> PrefixBatch:  # fmt: skip
    """A grow stage's prefix problem with S = 0 (its weights are zero, so any S gives the same
    output): inputs (n_freq, T, 1 + n_freq), targets at ``frequencies`` and the prefix mask,
    T the longest of ``prefixes``."""
    n, length = data.n_freq, max(prefixes)
    x = np.zeros((n, length, 1 + n), dtype=np.float32)
    x[np.arange(n), :, 1 + np.arange(n)] = 1.0
    t = np.arange(length, dtype=np.float64) / data.sample_rate
    f = np.asarray(frequencies, dtype=np.float64)[:, None]
    y = np.sin(2.0 * np.pi * f * t).astype(np.float32)
    mask = (torch.arange(length)[None, :] < torch.tensor(prefixes)[:, None]).float()
    return torch.from_numpy(x), torch.from_numpy(y), mask


def lbfgs_for(model: SineLSTM, history: int) -> torch.optim.LBFGS:
    # Tolerances 0: the budget alone ends a call, or the line search's own failure; torch's
    # defaults (1e-7, 1e-9) would end it on a loss that is merely small.
    return torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=10**9, max_eval=1,
                             tolerance_grad=0.0, tolerance_change=0.0, history_size=history,
                             line_search_fn="strong_wolfe")  # fmt: skip


@dataclass(frozen=True)
class PolishStep:
    """What one polish epoch did."""

    lowest_loss: float
    """The lowest full-length training MSE among the epoch's evaluations: its online loss (a
    mean would count the line search's rejected trial points). The honest MSE of the weights
    it ends with is measured apart."""
    evaluations: int
    """Loss+gradient evaluations spent."""
    grad_norm: float
    """L2 norm of the gradient at the last evaluation."""
    restarts: int
    """Times the history was dropped after a stop short of the budget."""
    converged: bool
    """A call from a fresh history made no progress: polishing further cannot pay."""


class Polisher:
    """Runs polish epochs of ``evaluations`` loss+gradient evaluations each on ``model``."""

    def __init__(self, model: SineLSTM, optimizer: torch.optim.LBFGS, data: DataConfig,
                 ignore_s: bool, batch: PrefixBatch | None = None,
                 compiled: bool = False) -> None:  # fmt: skip
        self.model, self.optimizer, self.ignore_s = model, optimizer, ignore_s
        self.compiled = compiled  # model.clock.batch.error_sums
        # The full-length problem, or a grow stage's prefix (model.clock.training).
        self.whole = batch is None
        if batch is None:  # every step of every block: the mask is made once, not per evaluation
            x, y = full_length_batch(data)
            batch = (x, y, torch.ones(y.shape))
        self.x, self.y, self.mask = batch
        self.evaluations, self.lowest = 0, math.inf
        self.grad_norm = float("nan")

    def loss(self) -> torch.Tensor:
        """The problem's plain MSE at the current weights (with the graph for backward)."""
        sums = error_sums(self.model, self.x, self.y, self.mask, self.compiled)
        if self.whole:
            return sums.sum() / self.y.numel()
        return prefix_loss(sums, self.mask, balanced=False).loss

    def _closure(self) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=False)
        loss = self.loss()
        loss.backward()
        if self.ignore_s:  # S's weights stay zero: no direction the history builds moves them
            self.model.lstm.weight_ih_l0.grad[:, S_COLUMN] = 0.0
        grads = [p.grad.reshape(-1) for p in self.model.parameters()]
        self.grad_norm = float(torch.linalg.vector_norm(torch.cat(grads)))
        self.evaluations += 1
        self.lowest = min(self.lowest, float(loss.detach()))
        return loss

    def run(self, evaluations: int) -> PolishStep:
        self.model.train()
        self.evaluations, self.lowest, restarts, converged = 0, math.inf, 0, False
        fresh = not self.optimizer.state
        while self.evaluations < evaluations:
            group = self.optimizer.param_groups[0]
            group["max_eval"] = evaluations - self.evaluations
            before = self.evaluations
            self.optimizer.step(self._closure)
            if self.evaluations >= evaluations:
                break
            # Stopped short: no descent along the history's direction. From a fresh history
            # (steepest descent) that means a minimum as far as float32 can tell.
            if fresh and self.evaluations - before <= MAX_LINE_SEARCH + 1:
                converged = True
                break
            self.optimizer.state.clear()
            restarts, fresh = restarts + 1, True
        return PolishStep(self.lowest, self.evaluations, self.grad_norm, restarts, converged)
