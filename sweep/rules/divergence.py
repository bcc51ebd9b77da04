"""Which row of the plan's Decision Matrix a loss curve is in, from per-epoch losses alone:
every rule of the plan that stops a trial, each with the sentence that says why. (The clock's
grow-stage stall rule is beside it, in ``sweep.rules.stall``.)

Pure functions over plain floats (index 0 = epoch 1); no Optuna here, the pruner adapts them.

Each rule looks at the losses seen so far and asks one question about the latest epoch: it
returns a sentence with the numbers when it fires, else None. `diagnose` replays a curve epoch by
epoch and returns the first epoch at which any rule fires, so a trial is stopped as early as the
evidence allows; within one epoch the priority is the order of `RULES`.

Definitions (a change is relative to the previous epoch's loss):
- non_finite: the loss is NaN or +-Inf.
- jump: the loss rose more than JUMP_RATIO, unless that rise completes an oscillation.
- diverging: the loss rose at each of the last RISE_WINDOW epochs, all after epoch
  RISING_AFTER_EPOCH, and sits more than RISE_TOLERANCE above the best loss so far.
- oscillating: the loss fell by at least OSCILLATION_RATIO at the previous epoch and rose by at
  least OSCILLATION_RATIO at this one.
- plateau: at epoch PLATEAU_AFTER_EPOCH or later, the best of the last PLATEAU_WINDOW losses is
  above PLATEAU_LEVEL and beats the best before them by at most PLATEAU_MIN_IMPROVEMENT.

Why jump and oscillating are split that way: every rise of 30% is also a rise of more than 20%,
so with jump checked first an oscillation could never be named. A big rise straight after a big
fall is the plan's "oscillates +-30%" row; any other rise over 20% is a "sudden jump". Both get
the same action, so the split only sharpens the reason. A swing that starts with a rise is a jump
at that rise: stopped one epoch earlier, under the other name.

Ratio rules need a positive, finite previous loss (an MSE); elsewhere they stay silent, and a
non-finite loss is left to non_finite, which `diagnose` checks first.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

# "No sudden jumps > 20% between epochs" (Monitoring Checklist): a rise strictly above this.
JUMP_RATIO = 0.20
# "Loss increases after epoch 2" (Decision Matrix): rises up to epoch 2 are start-up noise.
RISING_AFTER_EPOCH = 2
# "Minor fluctuations OK" (Monitoring Checklist): one rise is a wiggle, this many in a row is a
# trend. Alternating noise never rises twice in a row.
RISE_WINDOW = 3
# A curve within +-5% of a non-increasing trend is at most 1.05 / 0.95 - 1 = 10.5% above its
# best, so 15% keeps such noise out with margin while a few percent per epoch still adds up.
RISE_TOLERANCE = 0.15
# "Loss oscillates ±30%" (Decision Matrix): a fall and then a rise, each at least this.
OSCILLATION_RATIO = 0.30
# "If 0.0001 is too slow (after 15 epochs, loss > 0.1)" (Alternative Learning Rates).
PLATEAU_LEVEL = 0.1
PLATEAU_AFTER_EPOCH = 15
# "Plateau" means no longer improving: judged on the best of the last few epochs, not on the
# latest one, so one noisy epoch neither triggers nor hides it.
PLATEAU_WINDOW = 5
PLATEAU_MIN_IMPROVEMENT = 0.01
# The plan's next learning rates: "Reduce to 0.00005, restart", "Increase to 0.0003, resume".
RESTART_LR = 5e-5
RESUME_LR = 3e-4

Rule = Callable[[Sequence[float]], "str | None"]


def _lr(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-")


#: The verdict on a growing prefix that stopped growing (the clock's stall rule, below).
STALLED = "stalled"
_RESTART = f"reduce LR to {_lr(RESTART_LR)} and restart"
ACTIONS = MappingProxyType(
    {
        "healthy": "continue to convergence",
        "non_finite": f"{_RESTART}; check data for NaN/Inf",
        "jump": _RESTART,
        "diverging": _RESTART,
        "oscillating": _RESTART,
        "plateau": f"increase LR to {_lr(RESUME_LR)} and resume",
        # Not a row of the plan: the clock's grow stage (below). Seeds decide it, not the lr.
        STALLED: "another seed: the learning rate is not the cause",
    }
)


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on a curve, the epoch it was reached at, and what the plan says to do."""

    verdict: str
    """One of ACTIONS' keys."""
    epoch: int | None
    """1-based epoch at which the rule fired; None when healthy."""
    action: str
    """The plan's advice for this verdict."""
    reason: str
    """One sentence with the numbers that led to the verdict."""

    @property
    def stop(self) -> bool:
        return self.verdict != "healthy"


def _change(prev: float, cur: float) -> float | None:
    """Relative change from prev to cur; None where a ratio means nothing."""
    if not (math.isfinite(prev) and math.isfinite(cur)) or prev <= 0:
        return None
    # Rounded so that decimal inputs exactly at a threshold (0.5 -> 0.6) land on it rather than
    # a float hair to either side.
    return round((cur - prev) / prev, 12)


def fmt(x: float) -> str:
    return f"{x:.4g}"


def _swing(losses: Sequence[float]) -> tuple[float, float] | None:
    """(fall, rise) if the last two changes are a fall and a rise of OSCILLATION_RATIO each."""
    if len(losses) < 3:
        return None
    fall = _change(losses[-3], losses[-2])
    rise = _change(losses[-2], losses[-1])
    if fall is None or rise is None:
        return None
    if fall <= -OSCILLATION_RATIO and rise >= OSCILLATION_RATIO:
        return fall, rise
    return None


def check_non_finite(losses: Sequence[float]) -> str | None:
    if not losses or math.isfinite(losses[-1]):
        return None
    return f"loss is {losses[-1]} at epoch {len(losses)}"


def check_jump(losses: Sequence[float]) -> str | None:
    if len(losses) < 2 or _swing(losses) is not None:
        return None
    rise = _change(losses[-2], losses[-1])
    if rise is None or rise <= JUMP_RATIO:
        return None
    e = len(losses)
    return (
        f"loss rose {rise:.1%} from epoch {e - 1} ({fmt(losses[-2])}) "
        f"to epoch {e} ({fmt(losses[-1])})"
    )


def check_diverging(losses: Sequence[float]) -> str | None:
    e = len(losses)
    # The first rise of the window ends at epoch e - RISE_WINDOW + 1 and must come after
    # RISING_AFTER_EPOCH.
    if e - RISE_WINDOW + 1 <= RISING_AFTER_EPOCH:
        return None
    window = losses[-RISE_WINDOW - 1 :]
    changes = [_change(a, b) for a, b in itertools.pairwise(window)]
    if any(c is None or c <= 0 for c in changes):
        return None
    best = min(x for x in losses if math.isfinite(x))
    above = _change(best, losses[-1])
    if above is None or above <= RISE_TOLERANCE:
        return None
    return (
        f"loss rose at each of the last {RISE_WINDOW} epochs, from epoch {e - RISE_WINDOW} "
        f"({fmt(window[0])}) to epoch {e} ({fmt(losses[-1])}), {above:.1%} above the best "
        f"({fmt(best)} at epoch {list(losses).index(best) + 1})"
    )


def check_oscillating(losses: Sequence[float]) -> str | None:
    swing = _swing(losses)
    if swing is None:
        return None
    fall, rise = swing
    e = len(losses)
    return (
        f"loss fell {-fall:.1%} at epoch {e - 1} ({fmt(losses[-3])} to {fmt(losses[-2])}) "
        f"then rose {rise:.1%} at epoch {e} ({fmt(losses[-1])})"
    )


def check_plateau(losses: Sequence[float]) -> str | None:
    e = len(losses)
    recent, before = losses[-PLATEAU_WINDOW:], losses[:-PLATEAU_WINDOW]
    if e < PLATEAU_AFTER_EPOCH or not before:
        return None
    if not all(math.isfinite(x) for x in losses):
        return None
    best_recent, best_before = min(recent), min(before)
    if best_recent <= PLATEAU_LEVEL:
        return None
    change = _change(best_before, best_recent)
    if change is None or -change > PLATEAU_MIN_IMPROVEMENT:
        return None
    return (
        f"best loss of epochs {e - PLATEAU_WINDOW + 1}-{e} ({fmt(best_recent)}) is within "
        f"{PLATEAU_MIN_IMPROVEMENT:.0%} of the best before them ({fmt(best_before)}) and still "
        f"above {PLATEAU_LEVEL} at epoch {e}"
    )


RULES: tuple[tuple[str, Rule], ...] = (
    ("non_finite", check_non_finite),
    ("jump", check_jump),
    ("diverging", check_diverging),
    ("oscillating", check_oscillating),
    ("plateau", check_plateau),
)


def diagnose(losses: Sequence[float]) -> Diagnosis:
    """The first epoch at which a rule fires, with its verdict; healthy if none ever does."""
    values = [float(x) for x in losses]
    for epoch in range(1, len(values) + 1):
        seen = values[:epoch]
        for verdict, rule in RULES:
            reason = rule(seen)
            if reason is not None:
                return Diagnosis(verdict, epoch, ACTIONS[verdict], reason)
    if values:
        reason = f"no rule fired in {len(values)} epochs; last loss {fmt(values[-1])}"
    else:
        reason = "no losses reported yet"
    return Diagnosis("healthy", None, ACTIONS["healthy"], reason)


def non_finite_step(epoch: int) -> Diagnosis:
    """A NaN/Inf loss or gradient inside an epoch: the trainer did not apply that step (the
    weights stay the last finite ones), so the epoch's validation MSE itself is finite."""
    return Diagnosis(
        "non_finite", epoch, ACTIONS["non_finite"],
        f"non-finite loss or gradient in epoch {epoch}; the bad step was not applied",
    )  # fmt: skip
