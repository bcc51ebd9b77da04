"""Which run of a study leads: the one a longer polish is spent on (issue 20).

A clock's polish stops once its model is excellent (or its budget is spent), so the study's
many good clocks are delivered soon and cheaply; the study's best model is the one worth more
evaluations. A run leads while its honest validation MSE is below every other finished model's,
and one of those is excellent already: the first excellent model is delivered at once, and a
later one polishes on only when it beats it. With parallel workers two runs may lead for a
while; each is asked again after every polish epoch, so the one overtaken stops.

Pure functions over plain numbers; nothing of ours, no Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sweep.rules.criteria import EXCELLENT


def leads(value: float, others: Iterable[float | None]) -> bool:
    """Whether a run at honest validation MSE ``value`` leads, given the values of the study's
    other finished models (None or NaN: no model)."""
    finished = [v for v in others if v is not None and math.isfinite(v)]
    if not finished or not math.isfinite(value):
        return False
    best = min(finished)
    return best < EXCELLENT.max_train and value < best
