"""One grow or tune update's data and loss: fresh noise realisations of every block's prefix,
and the (optionally balanced) MSE over each block's own prefix, computed from the zero state in
checkpointed chunks when the sequence is long."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint

from model.data import DataConfig, mixed_signal

#: Mixed into the noise generator's seed so training noise never equals an evaluation set's
#: (those use ``default_rng(seed)`` with a plain integer seed).
NOISE_STREAM = 0xC10C
#: The input column of the mixed signal S (the rest is the one-hot C).
S_COLUMN = 0
#: Steps per checkpointed chunk of the torch engine's longer forward pass: backpropagation then
#: keeps only each chunk's first state and recomputes one chunk at a time. At the full 10,000
#: steps this took ~100 MB off a loss+gradient evaluation's peak at no cost in speed
#: (bench/results/memory.md); a sequence this short or shorter runs in one piece, unchanged.
CHUNK_STEPS = 1000


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
    x[..., S_COLUMN] = s[:, None, :]
    x[:, np.arange(n), :, 1 + np.arange(n)] = 1.0
    t = np.arange(prefix, dtype=np.float64) / data.sample_rate
    f = np.asarray(targets or data.frequencies, dtype=np.float64)[:, None]
    y = np.broadcast_to(np.sin(2.0 * np.pi * f * t), (realisations, n, prefix))
    return (torch.from_numpy(x.reshape(realisations * n, prefix, 1 + n)),
            torch.from_numpy(y.reshape(realisations * n, prefix).astype(np.float32)))  # fmt: skip


def prefix_mask(prefixes: tuple[int, ...], length: int) -> torch.Tensor:
    """(n_freq, length): 1 where step t is inside block b's prefix."""
    return (torch.arange(length)[None, :] < torch.tensor(prefixes)[:, None]).float()


def row_error_sums(out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(rows,): each row's squared error summed over the steps ``mask`` keeps (row r * n_freq
    + b reads block b's mask)."""
    n_freq, length = mask.shape
    return (((out - y) ** 2).view(-1, n_freq, length) * mask).sum(dim=2).reshape(-1)


Tensors3 = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _chunk(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
           h: torch.Tensor, c: torch.Tensor) -> Tensors3:  # fmt: skip
    out, (h, c) = model(x, (h, c))
    return row_error_sums(out, y, mask), h, c


def error_sums(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
               compiled: bool = False) -> torch.Tensor:  # fmt: skip
    """``row_error_sums`` of ``model``'s output from the zero state at t = 0. ``compiled``:
    computed by ``model.sequence`` where it can (``ClockConfig.polish_engine``). Otherwise in
    torch, and longer than CHUNK_STEPS the pass runs in checkpointed chunks (the same
    gradient; the sums' rounding differs in the last bits)."""
    if compiled:
        from model import sequence  # here: numba costs ~120 MB, paid only by runs that polish

        if sequence.supported(model, x):
            rows = mask.repeat(x.shape[0] // mask.shape[0], 1)  # row r * n_freq + b: block b's
            return sequence.error_sums(model, x, y, rows)
    h, c = model.init_state(x.shape[0])
    length = x.shape[1]
    if length <= CHUNK_STEPS:
        return _chunk(model, x, y, mask, h, c)[0]
    total = torch.zeros(())
    for s in range(0, length, CHUNK_STEPS):
        e = s + CHUNK_STEPS
        # No randomness inside the model: the RNG state need not be kept for the recompute.
        part, h, c = checkpoint(_chunk, model, x[:, s:e], y[:, s:e], mask[:, s:e], h, c,
                                use_reentrant=False, preserve_rng_state=False)  # fmt: skip
        total = total + part
    return total


class PrefixLoss(NamedTuple):
    loss: torch.Tensor
    """What is minimised (balanced or plain)."""
    plain: float
    """The plain MSE: mean over blocks of each block's MSE over its own prefix."""
    worst: float
    """The largest block MSE."""


def prefix_loss(sums: torch.Tensor, mask: torch.Tensor, balanced: bool) -> PrefixLoss:
    """Each block's MSE over its own prefix (``mask``), from ``row_error_sums``. Balanced:
    minimise mean_b w_b MSE_b, w_b = MSE_b / mean(MSE), the weights detached so they only
    steer, pushing on the worst frequency."""
    n_freq = mask.shape[0]
    rows = sums.view(-1, n_freq)
    per_freq = rows.sum(dim=0) / (mask.sum(dim=1) * rows.shape[0])
    plain = per_freq.mean()
    worst = float(per_freq.detach().max())
    if not balanced:
        return PrefixLoss(plain, float(plain.detach()), worst)
    w = per_freq.detach() / plain.detach().clamp_min(1e-12)
    return PrefixLoss((w * per_freq).mean(), float(plain.detach()), worst)
