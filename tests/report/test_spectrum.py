"""The error spectrum puts a distortion at its own band, a wrong amplitude at the block's."""

from __future__ import annotations

import numpy as np
import pytest

from model.data import DataConfig, make_set
from sweep.report.spectrum import error_spectrum

DATA = DataConfig(samples=2000)  # 2 s: 0.5 Hz bins, whole periods of every frequency


def test_each_kind_of_error_lands_in_its_band() -> None:
    data = make_set(2, DATA)
    t = np.arange(DATA.samples) / DATA.sample_rate
    out = data.targets.astype(np.float64).copy()
    out[0] += 0.1 * np.sin(2 * np.pi * 4 * t)  # the 1 Hz block distorted at 4 Hz
    out[1] *= 0.9  # the 3 Hz block 10% low
    out[2] += 0.05  # the 5 Hz block offset
    info = error_spectrum(7, out, data, DATA)
    assert info.number == 7 and info.freqs == (1.0, 3.0, 5.0, 7.0)
    assert info.share[0][4] == pytest.approx(1.0, abs=1e-6)
    assert info.share[1][3] == pytest.approx(1.0, abs=1e-6)
    assert info.share[2][0] == pytest.approx(1.0, abs=1e-6)
    assert info.mse[0] == pytest.approx(0.005, rel=1e-3)  # 0.1^2 / 2
    assert info.mse[1] == pytest.approx(0.01 * 0.5, rel=1e-3)
    assert info.mse[3] == 0.0 and sum(info.share[3]) == 0.0  # a perfect block: no shares
