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
from dataclasses import dataclass

#: Predicting 0 everywhere scores the mean of sin^2 over whole periods: 0.5. Under the
#: assignment's noise S(t) says nothing about t, so a model that cannot tell time sits here.
PREDICT_ZERO_MSE = 0.5
#: An honest MSE above this fraction of the floor is "at the predict-zero floor".
FLOOR_FRACTION = 0.9


def at_floor(mse: float | None) -> bool:
    """Whether an honest MSE is at the predict-zero floor (None: not measured, so not)."""
    return mse is not None and mse > FLOOR_FRACTION * PREDICT_ZERO_MSE


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
