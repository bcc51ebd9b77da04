from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from sweep.rules.divergence import (
    ACTIONS,
    PLATEAU_AFTER_EPOCH,
    RULES,
    Rule,
    check_diverging,
    check_jump,
    check_non_finite,
    check_oscillating,
    check_plateau,
    diagnose,
)

NAN, INF = math.nan, math.inf
PERSON = [0.2847, 0.4058, 0.43, 0.45, 0.4580]  # the plan's 5-epoch run at LR 1e-3
SMOOTH = [0.3 * 0.85**k for k in range(30)]
# +-5% wiggles around a slow decay: every other epoch rises by about 5%.
NOISY = [0.3 * 0.95**k * (1 + 0.05 * (-1) ** k) for k in range(30)]
# The worst +-5% noise on a flat trend: three rises in a row, 10.5% above the best so far.
WORST_NOISE = [0.05 * (1 + n) for n in (0.0, -0.05, -0.0167, 0.0167, 0.05, 0.0, -0.05) * 4]
SLOW_RISE = [0.3 * 1.03**k for k in range(10)]  # +3% per epoch: 15.9% above the best at 6
OSCILLATING = [0.5, 0.4, 0.35, 0.2, 0.3, 0.2, 0.3]  # -42.9% at 4, then +50% at 5


@pytest.mark.parametrize(
    ("losses", "verdict", "epoch"),
    [
        pytest.param([], "healthy", None, id="empty"),
        pytest.param(PERSON, "jump", 2, id="person-run"),
        pytest.param(SMOOTH, "healthy", None, id="smooth-30"),
        pytest.param(NOISY, "healthy", None, id="noisy-improving-30"),
        pytest.param(WORST_NOISE, "healthy", None, id="worst-5pct-noise-flat"),
        pytest.param([0.05] * 30, "healthy", None, id="flat-below-level"),
        pytest.param([0.1] * 30, "healthy", None, id="flat-at-level"),
        pytest.param(OSCILLATING, "oscillating", 5, id="oscillating"),
        pytest.param([1.0, 1.4, 0.9, 1.3], "jump", 2, id="swing-up-first-is-jump"),
        pytest.param([1.0, 0.6, 0.75], "jump", 3, id="big-fall-small-rise-is-jump"),
        pytest.param([1.0, 0.7, 0.91], "oscillating", 3, id="swing-exactly-30pct"),
        pytest.param([0.5] * 20, "plateau", 15, id="plateau-0.5"),
        pytest.param([0.5] * 14, "healthy", None, id="flat-0.5-before-15"),
        pytest.param([0.3, 0.25, 0.2, NAN, 0.1], "non_finite", 4, id="nan-at-4"),
        pytest.param([0.3, 0.25, INF], "non_finite", 3, id="inf"),
        pytest.param([-INF], "non_finite", 1, id="minus-inf"),
        pytest.param(SLOW_RISE, "diverging", 6, id="slow-rise-adds-up"),
        pytest.param([0.5, 0.6], "healthy", None, id="rise-exactly-20pct"),
        pytest.param([0.5, 0.6001], "jump", 2, id="rise-just-over-20pct"),
        # jump and diverging both fire at epoch 5: jump has priority.
        pytest.param([0.3, 0.3, 0.31, 0.32, 0.45], "jump", 5, id="jump-over-diverging"),
        # diverging and plateau both fire at epoch 15: diverging has priority.
        pytest.param([0.5] * 11 + [0.52, 0.54, 0.56, 0.6], "diverging", 15, id="div-over-plat"),
        # The earliest epoch wins, whatever happens later.
        pytest.param(PERSON + [0.5] * 20, "jump", 2, id="first-epoch-wins"),
    ],
)
def test_diagnose(losses: list[float], verdict: str, epoch: int | None) -> None:
    d = diagnose(losses)
    assert (d.verdict, d.epoch) == (verdict, epoch)
    assert d.stop is (verdict != "healthy")
    assert d.action == ACTIONS[verdict]
    assert d.reason


def test_person_run_reason_has_the_numbers() -> None:
    d = diagnose(PERSON)
    assert d.reason == "loss rose 42.5% from epoch 1 (0.2847) to epoch 2 (0.4058)"
    assert d.action == "reduce LR to 5e-5 and restart"


@pytest.mark.parametrize(
    ("rule", "losses", "fires"),
    [
        (check_non_finite, [], False),
        (check_non_finite, [0.3], False),
        (check_non_finite, [0.3, NAN], True),
        (check_non_finite, [NAN, 0.3], False),  # only the latest epoch is judged
        (check_jump, [0.3], False),
        (check_jump, [0.5, 0.6], False),  # exactly 20%
        (check_jump, [0.25, 0.3], False),  # exactly 20%
        (check_jump, [0.5, 0.6001], True),
        (check_jump, [NAN, 0.5], False),
        (check_jump, [0.0, 0.5], False),  # no ratio from a zero loss
        (check_jump, [1.0, 0.7, 0.91], False),  # completes an oscillation
        (check_jump, [1.0, 0.71, 0.95], True),  # fall of 29%: not an oscillation
        (check_diverging, [0.3, 0.33, 0.363, 0.3993], False),  # a rise ends at epoch 2
        (check_diverging, [0.3, 0.33, 0.363, 0.3993, 0.439], True),
        (check_diverging, [0.3, 0.3, 0.31, 0.33, 0.34], False),  # 13.3% above best
        (check_diverging, [0.3, 0.3, 0.31, 0.33, 0.35], True),  # 16.7% above best
        (check_diverging, [0.3, 0.3, 0.4, 0.35, 0.45], False),  # not three rises in a row
        (check_diverging, [0.3, 0.3, 0.31, 0.31, 0.35], False),  # a flat step is not a rise
        (check_diverging, [NAN, 0.3, 0.31, 0.32, 0.4], True),  # NaN history does not raise
        (check_oscillating, [1.0, 0.6], False),
        (check_oscillating, [1.0, 0.6, 0.9], True),
        (check_oscillating, [1.0, 0.7, 0.91], True),  # exactly 30% both ways
        (check_oscillating, [1.0, 0.71, 1.0], False),  # fall of 29%
        (check_oscillating, [1.0, 0.6, 0.77], False),  # rise of 28.3%
        (check_oscillating, [0.6, 1.0, 0.6], False),  # rise first, then fall
        (check_plateau, [0.5] * (PLATEAU_AFTER_EPOCH - 1), False),
        (check_plateau, [0.5] * PLATEAU_AFTER_EPOCH, True),
        (check_plateau, [0.1] * 20, False),  # "loss > 0.1": 0.1 itself is on target
        (check_plateau, [0.1001] * 20, True),
        (check_plateau, [1.0] * 10 + [0.99] * 5, True),  # improved exactly 1%
        (check_plateau, [1.0] * 10 + [0.98] * 5, False),  # improved 2%
        (check_plateau, [1.0] * 10 + [1.1] * 5, True),  # got worse
        (check_plateau, [0.5] * 14 + [0.09], False),  # best of the window is on target
        (check_plateau, [0.5] * 10 + [NAN] + [0.5] * 4, False),
    ],
)
def test_rule_alone(rule: Rule, losses: Sequence[float], fires: bool) -> None:
    assert (rule(losses) is not None) is fires


def test_rules_and_actions_cover_the_same_verdicts() -> None:
    assert [name for name, _ in RULES] == [
        "non_finite",
        "jump",
        "diverging",
        "oscillating",
        "plateau",
    ]
    # "stalled" is the clock's grow-stage verdict (check_stalled), not a row of the plan.
    assert set(ACTIONS) == {name for name, _ in RULES} | {"healthy", "stalled"}
    assert all(ACTIONS.values())


def test_action_per_verdict_follows_the_plan() -> None:
    for verdict in ("jump", "diverging", "oscillating"):
        assert ACTIONS[verdict] == "reduce LR to 5e-5 and restart"
    assert ACTIONS["non_finite"].startswith("reduce LR to 5e-5 and restart")
    assert ACTIONS["plateau"] == "increase LR to 3e-4 and resume"
    assert ACTIONS["healthy"] == "continue to convergence"


def test_diagnose_accepts_any_real_numbers() -> None:
    assert diagnose((1, 2)).verdict == "jump"
    assert diagnose([NAN, NAN, NAN]).epoch == 1
