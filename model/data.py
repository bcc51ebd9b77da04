"""The assignment's data set, built as a pure function of a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Frequencies of the four components, in Hz; block i of a set targets FREQUENCIES[i].
FREQUENCIES: tuple[float, ...] = (1.0, 3.0, 5.0, 7.0)
SAMPLE_RATE_HZ = 1000.0
DURATION_S = 10.0
AMPLITUDE_RANGE = (0.8, 1.2)
PHASE_RANGE = (0.0, 2.0 * np.pi)
TRAIN_SEED = 1
TEST_SEED = 2
VALIDATION_SEED = 3


@dataclass(frozen=True)
class DataConfig:
    """What a set is made of; the defaults are the assignment."""

    frequencies: tuple[float, ...] = FREQUENCIES
    """Component frequencies in Hz, one block (and one one-hot channel) each."""
    sample_rate: float = SAMPLE_RATE_HZ
    """Samples per second."""
    samples: int = int(DURATION_S * SAMPLE_RATE_HZ)
    """Samples per block (10,000 = 10 s at 1000 Hz)."""
    amplitude: tuple[float, float] = AMPLITUDE_RANGE
    """Range of the per-sample, per-component random amplitude A."""
    phase: tuple[float, float] = PHASE_RANGE
    """Range of the per-sample, per-component random phase phi."""

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be positive, got {self.samples}")
        if not self.frequencies:
            raise ValueError("at least one frequency is needed")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

    @property
    def n_freq(self) -> int:
        return len(self.frequencies)

    @property
    def input_size(self) -> int:
        """S plus one one-hot channel per frequency."""
        return 1 + self.n_freq


@dataclass(frozen=True)
class SignalSet:
    """One set: ``inputs[b, t] = [S(t), one-hot(b)]``, ``targets[b, t] = sin(2 pi f_b t)``.

    Blocks are kept apart (shape ``(n_freq, samples, ...)``) because the LSTM state is reset
    at each block start; ``rows`` gives the assignment's flat 40,000-row view.
    """

    inputs: np.ndarray  # (n_freq, samples, 1 + n_freq), float32
    targets: np.ndarray  # (n_freq, samples), float32
    mixed: np.ndarray  # (samples,), float32: S(t), shared by the blocks
    seed: int

    @property
    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        n_freq, samples, width = self.inputs.shape
        return self.inputs.reshape(n_freq * samples, width), self.targets.reshape(-1)


def time_axis(config: DataConfig) -> np.ndarray:
    return np.arange(config.samples, dtype=np.float64) / config.sample_rate


def mixed_signal(config: DataConfig, rng: np.random.Generator) -> np.ndarray:
    """S(t) = mean over components of A sin(2 pi f t + phi), A and phi drawn per sample."""
    t = time_axis(config)[None, :]
    f = np.asarray(config.frequencies, dtype=np.float64)[:, None]
    shape = (config.n_freq, config.samples)
    amp = rng.uniform(*config.amplitude, size=shape)
    phi = rng.uniform(*config.phase, size=shape)
    return (amp * np.sin(2.0 * np.pi * f * t + phi)).mean(axis=0)


def targets(config: DataConfig, dtype: type = np.float32) -> np.ndarray:
    """(n_freq, samples): block b's target sin(2 pi f_b t), float32 as in every set (float64
    for exact arithmetic on the targets themselves). The same in every set: only the noise in
    S depends on the seed."""
    f = np.asarray(config.frequencies, dtype=np.float64)[:, None]
    return np.sin(2.0 * np.pi * f * time_axis(config)[None, :]).astype(dtype)


def make_set(seed: int, config: DataConfig = DataConfig()) -> SignalSet:
    """Build one set; the same seed gives identical arrays, another seed other noise."""
    rng = np.random.default_rng(seed)
    s = mixed_signal(config, rng)
    n = config.n_freq
    inputs = np.zeros((n, config.samples, 1 + n), dtype=np.float32)
    inputs[:, :, 0] = s
    inputs[np.arange(n), :, 1 + np.arange(n)] = 1.0
    return SignalSet(inputs=inputs, targets=targets(config), mixed=s.astype(np.float32), seed=seed)
