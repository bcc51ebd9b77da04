"""How a figure's MSE axis is scaled: pure decisions on the values, tested without plotly.

A log axis from 0.001 to 1 is right when trials span decades (a sweep that learns); when every
value sits within a few percent of the others (a sweep at the predict-zero floor) it draws them
as one line, so the axis becomes linear and zoomed onto the differences that exist.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

#: Values within this fraction of each other are drawn on a zoomed linear axis.
NEAR_SPREAD = 0.05
#: Padding around the zoomed values, as a share of their span.
PAD = 0.15
LINEAR = "linear"
LOG = "log"


class YAxis(NamedTuple):
    type: str
    """``LINEAR`` (zoomed onto the values) or ``LOG``."""
    range: tuple[float, float]
    """In axis units: values for a linear axis, log10 of them for a log one."""
    tickvals: tuple[float, ...] = ()
    """Log axis only: 1-2-5 ticks, each labelled in full (plotly's minor labels read "5")."""
    tickformat: str = ""
    """Linear axis only: enough decimals to tell the ticks apart."""

    @property
    def ticktext(self) -> tuple[str, ...]:
        return tuple(f"{v:g}" for v in self.tickvals)

    def contains(self, y: float) -> bool:
        lo, hi = self.range
        at = math.log10(y) if self.type == LOG else y
        return lo <= at <= hi


def usable(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v) and v > 0]


def near_each_other(values: Iterable[float | None], floor_from: float) -> bool:
    """Every value above ``floor_from`` (all at the floor), or all within NEAR_SPREAD of the
    smallest: then a log axis cannot show their differences."""
    vals = usable(values)
    if not vals:
        return False
    return min(vals) > floor_from or max(vals) <= (1 + NEAR_SPREAD) * min(vals)


def zoomed(values: Iterable[float | None], floor: float, floor_from: float) -> YAxis:
    """A linear axis over the values; when they are at the floor, the floor is on it too."""
    vals = usable(values)
    lo, hi = min(vals), max(vals)
    if lo > floor_from:
        lo, hi = min(lo, floor), max(hi, floor)
    span = hi - lo or max(hi * 1e-3, 1e-9)
    pad = PAD * span
    decimals = max(2, 1 - math.floor(math.log10(span)) + 1)
    return YAxis(LINEAR, (lo - pad, hi + pad), tickformat=f".{decimals}f")


def log_ticks(lo: float, hi: float) -> tuple[float, ...]:
    """1, 2, 5 times each power of ten between ``lo`` and ``hi`` (positive values); every
    digit where that gives fewer than three ticks (a range under a decade)."""
    for digits in ((1, 2, 5), tuple(range(1, 10))):
        ticks = []
        for exp in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
            for m in digits:
                v = float(f"{m}e{exp}")  # exact decimal, not m * 10.0**exp
                if lo <= v <= hi:
                    ticks.append(v)
        if len(ticks) >= 3:
            break
    return tuple(ticks)


def logarithmic(values: Iterable[float | None], margin: float = 0.3) -> YAxis:
    """A log axis over the values, ``margin`` decades beyond them each side."""
    vals = usable(values)
    lo, hi = math.log10(min(vals)) - margin, math.log10(max(vals)) + margin
    return YAxis(LOG, (lo, hi), log_ticks(10**lo, 10**hi))


def mse_axis(
    values: Iterable[float | None],
    floor: float,
    floor_from: float,
    also_log: Iterable[float] = (),
) -> YAxis:
    """The axis for ``values``: zoomed and linear when they are near each other, otherwise log
    over them, the floor and ``also_log`` (the tier limits, say)."""
    vals = usable(values)
    if near_each_other(vals, floor_from):
        return zoomed(vals, floor, floor_from)
    return logarithmic([*vals, floor, *also_log])
