"""Where a model's error lives in frequency: the share of each block's error power per 1 Hz
band (issue 13). A clock whose slow oscillator is distorted shows its error at that block's
harmonics and beside them, not at its own frequency; a drifting phase or a wrong amplitude
shows at the block's own frequency."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from model.data import DataConfig, SignalSet

#: Bands shown: 0 Hz (a constant offset) up to this, in 1 Hz steps: the 7 Hz block's third
#: and fourth harmonics (21, 28 Hz) included.
MAX_HZ = 30


class ErrorSpectrumInfo(NamedTuple):
    number: int
    freqs: tuple[float, ...]
    """Each block's own frequency."""
    bands: tuple[int, ...]
    """Band centres in Hz: band k holds [k - 0.5, k + 0.5)."""
    share: tuple[tuple[float, ...], ...]
    """Per block: the share of its error power in each band (over all bands up to the
    Nyquist frequency the shares sum to 1)."""
    mse: tuple[float, ...]
    """Per block: its MSE, what the shares divide."""


def error_spectrum(
    number: int, outputs: np.ndarray, data: SignalSet, config: DataConfig, max_hz: int = MAX_HZ
) -> ErrorSpectrumInfo:
    """``outputs``: the model's predictions on ``data``, shaped like its targets."""
    err = np.asarray(outputs, dtype=np.float64) - data.targets
    power = np.abs(np.fft.rfft(err, axis=1)) ** 2
    hz = np.fft.rfftfreq(err.shape[1], d=1.0 / config.sample_rate)
    band = np.floor(hz + 0.5).astype(int)
    total = power.sum(axis=1)
    bands = tuple(range(max_hz + 1))
    share = tuple(
        tuple(
            float(power[i, band == k].sum() / total[i]) if total[i] > 0 else 0.0 for k in bands
        )  # fmt: skip
        for i in range(err.shape[0])
    )
    mse = tuple(float(v) for v in np.mean(err**2, axis=1))
    return ErrorSpectrumInfo(number, tuple(config.frequencies), bands, share, mse)
