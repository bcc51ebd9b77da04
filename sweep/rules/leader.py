"""Which run of a study leads: the one a longer polish is spent on (issue 20).

A clock's polish stops once its model is excellent (or its budget is spent), so the study's
many good clocks are delivered soon and cheaply; the most promising one is worth more
evaluations. Runs are compared at the same point of their polish: each by its *goal MSE*, the
honest validation MSE of the first epoch past its goal. (Compared by their final values, a
run just past the excellent bar would never beat a finished one, however fast it falls: in the
measured sweep the two clocks that ended under 0.0002 both passed the bar at 0.0005, behind a
clock that had stopped at 0.00047 with no further descent to be had.)

A run leads while its goal MSE is below every rival's, and one rival is excellent already, so
the first excellent model is delivered at once. A rival is another run with a goal MSE,
finished or still polishing, that did not stop as converged: a polish that found no further
descent says nothing about what a longer one would reach. With parallel workers two runs may
lead for a while; each is asked again after every polish epoch, so the one overtaken stops.

Pure functions over plain numbers; nothing of ours, no Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sweep.rules.criteria import EXCELLENT


def leads(goal_mse: float, rivals: Iterable[float | None]) -> bool:
    """Whether a run with this goal MSE leads, given its rivals' goal MSEs (None or NaN: no
    rival)."""
    known = [v for v in rivals if v is not None and math.isfinite(v)]
    if not known or not math.isfinite(goal_mse):
        return False
    best = min(known)
    return best < EXCELLENT.max_train and goal_mse < best
