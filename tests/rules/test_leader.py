"""Which run leads its study (sweep.rules.leader): a goal MSE below every rival's, one of which
is excellent already."""

from __future__ import annotations

import math

import pytest

from sweep.rules.criteria import EXCELLENT
from sweep.rules.leader import leads

BAR = EXCELLENT.max_train


@pytest.mark.parametrize(
    ("goal", "rivals", "expected"),
    [
        (0.0005, [], False),  # the first model: delivered at once, nobody to beat
        (0.0005, [None, math.nan], False),  # no finished model either
        (0.0005, [0.003, 0.2], False),  # none of the others is excellent yet
        (0.0005, [0.0008, 0.003], True),  # beats the excellent one
        (0.0008, [0.0008], False),  # a tie does not lead
        (0.0009, [0.0008, None], False),  # behind
        (math.nan, [0.0008], False),
        (BAR * 0.5, [BAR], False),  # the bar is strict: a model at it is not excellent
    ],
)
def test_leads(goal, rivals, expected) -> None:
    assert leads(goal, rivals) is expected
