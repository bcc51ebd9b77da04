from __future__ import annotations

import itertools
import math

import pytest

from sweep.rules.criteria import BELOW, TIERS, gaps, mse_ratio, mse_text, tier

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("train", "test", "expected"),
    [
        # excellent: train < 0.001, test < 0.002, ratio < 1.2
        (0.0005, 0.0005, "excellent"),
        (0.000999, 0.001, "excellent"),
        (0.001, 0.001, "good"),  # train at the bound
        (0.0018, 0.0019, "good"),  # train over the bound, ratio 1.06 passes
        (0.0009, 0.00107, "excellent"),
        (0.0009, 0.00108, "good"),  # ratio exactly 1.2
        (0.0005, 0.0, "excellent"),  # a zero test MSE is a usable value
        # good: train < 0.005, test < 0.007, ratio < 1.4
        (0.0049, 0.0049, "good"),
        (0.005, 0.005, "minimum"),  # train at the bound
        (0.0049, 0.0068, "good"),
        (0.004, 0.00559, "good"),
        (0.004, 0.0056, "minimum"),  # ratio exactly 1.4
        # minimum: train < 0.01, test < 0.015, ratio < 1.5
        (0.0099, 0.0099, "minimum"),
        (0.01, 0.01, "below"),  # train at the bound
        (0.0099, 0.0148, "minimum"),
        (0.0099, 0.0149, "below"),  # ratio 1.505
        (0.0105, 0.0149, "below"),  # train over the bound, test and ratio pass
        (0.004, 0.00599, "minimum"),
        (0.004, 0.006, "below"),  # ratio exactly 1.5 fails alone
        # not a usable MSE
        (NAN, 0.001, "below"),
        (0.001, NAN, "below"),
        (INF, 0.001, "below"),
        (0.0005, INF, "below"),
        (0.0, 0.0, "below"),
        (0.0, 0.0005, "below"),
        (-0.0005, 0.0005, "below"),
        (0.0005, -0.0001, "below"),
    ],
)
def test_tier(train: float, test: float, expected: str) -> None:
    assert tier(train, test) == expected


def test_tiers_best_first_and_nested() -> None:
    assert [t.name for t in TIERS] == ["excellent", "good", "minimum"]
    for better, worse in itertools.pairwise(TIERS):
        assert better.max_train < worse.max_train
        assert better.max_test < worse.max_test
        assert better.max_ratio < worse.max_ratio


def test_test_bound_never_fails_alone() -> None:
    # In every tier max_test >= max_train * max_ratio (equal in good and minimum, looser in
    # excellent), so a test MSE at its bound with train under its own fails the ratio too.
    for t in TIERS:
        assert t.max_test >= t.max_train * t.max_ratio - 1e-12
        g = {g.name: g for g in gaps(t.max_train * 0.99, t.max_test)}[t.name]
        assert g.failing == ("test", "ratio")


def test_ratio_failing_alone_shows_in_the_gaps() -> None:
    by_name = {g.name: g for g in gaps(0.004, 0.006)}
    minimum = by_name["minimum"]
    assert not minimum.met
    assert minimum.failing == ("ratio",)
    assert minimum.train_gap == pytest.approx(0.004 - 0.01)
    assert minimum.test_gap == pytest.approx(0.006 - 0.015)
    assert minimum.ratio_gap == 0.0
    assert by_name["good"].failing == ("ratio",)
    assert by_name["excellent"].failing == ("train", "test", "ratio")


def test_gaps_are_signed_and_match_tier() -> None:
    result = gaps(0.003, 0.0033)
    assert [g.name for g in result] == ["excellent", "good", "minimum"]
    assert [g.met for g in result] == [False, True, True]
    excellent = result[0]
    assert excellent.train_gap == pytest.approx(0.002)  # still 0.002 to go
    assert excellent.test_gap == pytest.approx(0.0013)
    assert excellent.ratio_gap == pytest.approx(-0.1)  # passes with 0.1 to spare
    assert tier(0.003, 0.0033) == "good"


def test_nan_and_zero_train() -> None:
    nan_gaps = gaps(NAN, 0.001)
    assert all(not g.met for g in nan_gaps)
    assert all(math.isnan(g.train_gap) for g in nan_gaps)
    assert all(g.failing == ("train", "ratio") for g in nan_gaps)
    assert mse_ratio(0.0, 0.001) == INF
    assert mse_ratio(NAN, 0.001) == INF
    assert math.isnan(mse_ratio(0.001, NAN))
    assert tier(NAN, NAN) == BELOW


@pytest.mark.parametrize(
    ("samples", "expected"),
    [(10_000, 0.5), (1_000, 0.5), (300, 0.39321), (250, 0.37976)],
)
def test_the_floor_is_each_blocks_variance_half_over_whole_periods(samples, expected) -> None:
    from model.data import DataConfig
    from sweep.identity import data_floor

    assert data_floor(DataConfig(samples=samples)) == pytest.approx(expected, abs=1e-4)


def test_the_floor_of_a_block_is_what_predicting_its_mean_scores() -> None:
    from sweep.rules.criteria import floor_mse

    ramp = [0.0, 1.0, 2.0, 3.0]  # mean 1.5: squared errors 2.25, 0.25, 0.25, 2.25
    assert floor_mse([ramp, [5.0, 5.0, 5.0, 5.0]]) == pytest.approx((1.25 + 0.0) / 2)


@pytest.mark.parametrize(
    ("mse", "floor", "expected"),
    [(0.3947, 0.3932, True), (0.3947, 0.5, False), (0.46, 0.5, True), (None, 0.5, False)],
)
def test_at_floor_is_relative_to_the_datas_own_floor(mse, floor, expected) -> None:
    from sweep.rules.criteria import at_floor

    assert at_floor(mse, floor) is expected


def test_every_report_prints_an_excellent_models_mse_to_two_significant_digits() -> None:
    # Four decimals printed 0.00011 and 0.00015 alike, as "0.0001".
    assert (mse_text(0.00011), mse_text(0.00015), mse_text(0.5)) == ("0.00011", "0.00015",
                                                                      "0.50000")  # fmt: skip
    assert mse_text(None) == "-"
