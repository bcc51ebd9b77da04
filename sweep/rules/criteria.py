"""The plan's Success Criteria as one table, and where a train/test MSE pair stands against it.

A tier is met when all three measures are strictly under its thresholds: train MSE, test MSE and
the ratio test / train (the plan's overfitting check, "Test MSE ≈ Training MSE (ratio < 1.5)").
In every tier the plan's test bound is at least train bound times ratio bound (equal for good and
minimum, looser for excellent), so under the train bound the test bound never fails without the
ratio failing too; it is kept because it is the plan's, and the report shows all three gaps.

Values that are not a usable MSE meet no tier: NaN or infinite train or test, a negative test,
or a train MSE of 0 or below. The ratio is test / train only for a positive train MSE; otherwise
it is reported as infinite, so it fails every tier instead of dividing by zero (a train MSE of
exactly 0 says the model memorised the data, not that it generalises).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: An honest MSE above this fraction of the floor is "at the floor".
FLOOR_FRACTION = 0.9
#: How the test/train ratio of a model at the floor is shown: it predicts about the same on
#: both sets, so a ratio near 1 says nothing about generalising.
RATIO_AT_FLOOR = "not meaningful at the floor"


def floor_mse(targets: Sequence[Sequence[float]]) -> float:
    """The best honest MSE a model that cannot tell time can score on blocks with these targets.

    Under the assignment's noise S(t) says nothing about t, so such a model can at best
    predict a constant per block (its one-hot input C tells the blocks apart); the best
    constant is the block's mean, which scores the variance of the block's target. Averaged
    over equally long blocks: 0.5 over whole periods of a sine (predicting 0 is then as good),
    less over a cut period (0.394 for blocks of 300 samples at 1, 3, 5 and 7 Hz)."""
    variances = []
    for block in targets:
        n = len(block)
        mean = math.fsum(block) / n
        variances.append(math.fsum((float(y) - mean) ** 2 for y in block) / n)
    return math.fsum(variances) / len(variances)


def at_floor(mse: float | None, floor: float) -> bool:
    """Whether an honest MSE is at the floor of its data (None: not measured, so not)."""
    return mse is not None and mse > FLOOR_FRACTION * floor


@dataclass(frozen=True)
class Tier:
    """One row of the plan's Success Criteria; every bound is strict."""

    name: str
    max_train: float
    """Training MSE must be below this."""
    max_test: float
    """Test MSE must be below this."""
    max_ratio: float
    """Test MSE / Training MSE must be below this."""


# "Success Criteria" in the plan, best first so that the first tier met is the one to report.
EXCELLENT = Tier("excellent", max_train=0.001, max_test=0.002, max_ratio=1.2)
GOOD = Tier("good", max_train=0.005, max_test=0.007, max_ratio=1.4)
MINIMUM = Tier("minimum", max_train=0.01, max_test=0.015, max_ratio=1.5)
TIERS: tuple[Tier, ...] = (EXCELLENT, GOOD, MINIMUM)
BELOW = "below"


def mse_text(mse: float | None) -> str:
    """An MSE as every report prints it: five decimals, so that the excellent tier's bounds
    (0.001, 0.002) and its models (~0.0001) keep two significant digits ("0.0001" hid the
    difference between 0.00011 and 0.00015); "-" where there is none."""
    return "-" if mse is None else f"{mse:.5f}"


@dataclass(frozen=True)
class TierGap:
    """How a train/test pair stands against one tier.

    Each gap is signed: measure minus threshold. A measure passes when its gap is negative (the
    bounds are strict, so 0 fails); a positive gap is how far it still has to fall. A NaN measure
    gives a NaN gap.
    """

    tier: Tier
    met: bool
    train_gap: float
    test_gap: float
    ratio_gap: float

    @property
    def name(self) -> str:
        return self.tier.name

    @property
    def failing(self) -> tuple[str, ...]:
        """The measures that keep this tier from being met, for a report line."""
        gaps = (("train", self.train_gap), ("test", self.test_gap), ("ratio", self.ratio_gap))
        # `not gap < 0` rather than `gap >= 0`: a NaN gap fails too.
        return tuple(measure for measure, gap in gaps if not gap < 0)


def mse_ratio(train_mse: float, test_mse: float) -> float:
    """test / train, or inf where train is not a positive finite number (see module docstring)."""
    if not math.isfinite(train_mse) or train_mse <= 0:
        return math.inf
    # Rounded so that decimal inputs exactly at a bound (0.006 / 0.004) land on it rather than a
    # float hair to either side.
    return round(test_mse / train_mse, 12)


def _usable(train_mse: float, test_mse: float) -> bool:
    return math.isfinite(train_mse) and math.isfinite(test_mse) and train_mse > 0 and test_mse >= 0


def gaps(train_mse: float, test_mse: float) -> list[TierGap]:
    """One TierGap per tier, best first."""
    ratio = mse_ratio(train_mse, test_mse)
    usable = _usable(train_mse, test_mse)
    out = []
    for t in TIERS:
        train_gap = train_mse - t.max_train
        test_gap = test_mse - t.max_test
        ratio_gap = ratio - t.max_ratio
        met = usable and train_gap < 0 and test_gap < 0 and ratio_gap < 0
        out.append(TierGap(t, met, train_gap, test_gap, ratio_gap))
    return out


def tier(train_mse: float, test_mse: float) -> str:
    """The best tier met: 'excellent', 'good', 'minimum', or 'below' when none is."""
    return next((g.name for g in gaps(train_mse, test_mse) if g.met), BELOW)
