"""The MSE axis a figure gets (sweep.report.axes): zoomed and linear at the floor, log
otherwise."""

from __future__ import annotations

import math

import pytest

from sweep.report import axes as ax

FLOOR, FLOOR_FROM = 0.5, 0.45


@pytest.mark.parametrize(
    ("values", "near"),
    [
        ([0.5000, 0.5003, 0.5011], True),  # the default sweep: every trial at the floor
        ([0.46, 0.52], True),  # all above 0.45, though 13% apart
        ([0.3966, 0.3996, 0.4107], True),  # within 5% of each other, below the floor
        ([0.3966, 0.4285], False),  # 8% apart
        ([0.004, 0.5], False),  # one trial learnt
        ([0.5, None, math.nan, math.inf], True),  # unusable values are left out
        ([], False),
    ],
)
def test_values_near_each_other_get_a_zoomed_axis(values: list, near: bool) -> None:
    assert ax.near_each_other(values, FLOOR_FROM) is near


def test_a_zoomed_axis_at_the_floor_shows_the_floor_and_the_differences() -> None:
    axis = ax.mse_axis([0.5003, 0.5011, 0.5007], FLOOR, FLOOR_FROM, also_log=[0.015])
    assert axis.type == ax.LINEAR
    lo, hi = axis.range
    assert lo < 0.5 < 0.5011 < hi  # the floor is on it, below every trial
    assert hi - lo < 0.002  # zoomed: 1e-4 apart is visible, 0.015 is not on it
    assert axis.contains(0.5) and not axis.contains(0.015)
    assert axis.tickformat == ".5f"  # ticks 0.0002 apart read apart


def test_a_log_axis_labels_every_tick_in_full() -> None:
    axis = ax.mse_axis([0.004, 0.3], FLOOR, FLOOR_FROM, also_log=[0.002, 0.015])
    assert axis.type == ax.LOG
    assert axis.contains(0.002) and axis.contains(0.5)  # the tiers and the floor are on it
    assert "5" not in axis.ticktext and "0.5" in axis.ticktext  # never plotly's bare "5"
    assert axis.ticktext == tuple(f"{v:g}" for v in axis.tickvals)


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"),
    [
        (0.001, 1.0, (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)),
        (0.29, 0.68, (0.3, 0.4, 0.5, 0.6)),  # under a decade: every digit
    ],
)
def test_log_ticks(lo: float, hi: float, ticks: tuple[float, ...]) -> None:
    assert ax.log_ticks(lo, hi) == ticks
