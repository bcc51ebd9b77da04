from __future__ import annotations

import numpy as np
import pytest

from model.data import DataConfig, make_set, time_axis


def test_default_set_is_the_assignment() -> None:
    s = make_set(1)
    assert s.inputs.shape == (4, 10_000, 5)
    assert s.targets.shape == (4, 10_000)
    x, y = s.rows
    assert x.shape == (40_000, 5) and y.shape == (40_000,)
    t = time_axis(DataConfig())
    assert t[0] == 0.0 and t[-1] == pytest.approx(9.999)
    for i, f in enumerate((1.0, 3.0, 5.0, 7.0)):
        np.testing.assert_allclose(s.targets[i], np.sin(2 * np.pi * f * t), atol=1e-6)


def test_one_hot_selects_the_block_and_s_is_shared() -> None:
    s = make_set(1, DataConfig(samples=50))
    for b in range(4):
        onehot = s.inputs[b, :, 1:]
        assert (onehot[:, b] == 1).all() and onehot.sum() == 50
        np.testing.assert_array_equal(s.inputs[b, :, 0], s.mixed)


def test_mixed_signal_follows_the_formula_and_ranges() -> None:
    cfg = DataConfig(samples=20_000)
    s = make_set(7, cfg)
    # S is a mean of 4 terms, each |A sin| <= 1.2.
    assert np.abs(s.mixed).max() <= 1.2
    # Random phase per sample: S carries no information about t.
    assert abs(np.corrcoef(s.mixed, s.targets[0])[0, 1]) < 0.05
    # E[S^2] = 4 * E[A^2] * 1/2 / 16 with A ~ U(0.8, 1.2): E[A^2] = 1 + 0.4**2 / 12.
    expected = 4 * (1 + 0.4**2 / 12) * 0.5 / 16
    assert np.mean(s.mixed.astype(np.float64) ** 2) == pytest.approx(expected, rel=0.03)


def test_same_seed_same_arrays_other_seed_other_noise() -> None:
    cfg = DataConfig(samples=300)
    a, b, c = make_set(1, cfg), make_set(1, cfg), make_set(2, cfg)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, c.targets)
    assert not np.array_equal(a.mixed, c.mixed)


def test_sizes_and_ranges_are_parameters() -> None:
    cfg = DataConfig(frequencies=(2.0, 4.0), samples=64, sample_rate=100.0, amplitude=(1.0, 1.0))
    s = make_set(0, cfg)
    assert s.inputs.shape == (2, 64, 3)
    t = np.arange(64) / 100.0
    np.testing.assert_allclose(s.targets[1], np.sin(2 * np.pi * 4.0 * t), atol=1e-6)


@pytest.mark.parametrize("bad", [dict(samples=0), dict(frequencies=()), dict(sample_rate=0.0)])
def test_bad_sizes_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        DataConfig(**bad)
