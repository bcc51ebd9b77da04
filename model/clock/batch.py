"""One grow or tune update's data and loss: fresh noise realisations of every block's prefix,
and the (optionally balanced) MSE over each block's own prefix."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch

from model.data import DataConfig, mixed_signal

#: Mixed into the noise generator's seed so training noise never equals an evaluation set's
#: (those use ``default_rng(seed)`` with a plain integer seed).
NOISE_STREAM = 0xC10C
#: The input column of the mixed signal S (the rest is the one-hot C).
S_COLUMN = 0


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


class PrefixLoss(NamedTuple):
    loss: torch.Tensor
    """What is minimised (balanced or plain)."""
    plain: float
    """The plain MSE: mean over blocks of each block's MSE over its own prefix."""
    worst: float
    """The largest block MSE."""


def prefix_loss(out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, balanced: bool
                ) -> PrefixLoss:  # fmt: skip
    """Each block's MSE over its own prefix (``mask``). Balanced: minimise
    mean_b w_b MSE_b, w_b = MSE_b / mean(MSE), the weights detached so they only steer,
    pushing on the worst frequency."""
    n_freq, length = mask.shape
    err = ((out - y) ** 2).view(-1, n_freq, length) * mask
    per_freq = err.sum(dim=(0, 2)) / (mask.sum(dim=1) * err.shape[0])
    plain = per_freq.mean()
    worst = float(per_freq.detach().max())
    if not balanced:
        return PrefixLoss(plain, float(plain.detach()), worst)
    w = per_freq.detach() / plain.detach().clamp_min(1e-12)
    return PrefixLoss((w * per_freq).mean(), float(plain.detach()), worst)
