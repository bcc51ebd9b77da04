"""Where a running sweep stands, as the live view shows it: pure functions of the trials."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial, TrialState

from sweep.report.live import render, use_live_view
from sweep.report.progress import (
    clock_text,
    eta_seconds,
    progress,
    study_text,
    trial_line,
    trial_text,
)

T0 = datetime(2026, 1, 1, 12, 0, 0)


def trial(number: int, state: TrialState, start_s: float, end_s: float | None = None,
          **attrs: object) -> FrozenTrial:  # fmt: skip
    finished = state != TrialState.RUNNING
    return FrozenTrial(
        number=number, state=state, value=attrs.get("val_mse") if finished else None,
        values=None, datetime_start=T0 + timedelta(seconds=start_s),
        datetime_complete=T0 + timedelta(seconds=end_s) if end_s is not None else None,
        params={"seed": number}, distributions={"seed": IntDistribution(0, 10_000)},
        user_attrs=dict(attrs), system_attrs={}, intermediate_values={}, trial_id=number,
    )  # fmt: skip


CLOCK_CURVES = {"val_mse": [0.9, 0.6, 0.4], "stage": ["grow", "grow", "grow"],
                "prefix": [100, 150, 225], "attempt": [0, 1, 1]}  # fmt: skip


def test_a_running_clock_trial_shows_its_attempt_stage_prefix_and_last_mse() -> None:
    line = trial_line(trial(3, TrialState.RUNNING, 0, curves=CLOCK_CURVES))
    assert (line.number, line.epoch, line.stage, line.prefix, line.attempt, line.val_mse) == (
        3, 3, "grow", 225, 2, 0.4)  # fmt: skip
    assert trial_text(line) == "trial 3  attempt 2  grow  epoch 3  prefix 225  val MSE 0.4"


def test_an_l1_trial_before_its_first_epoch_shows_no_numbers() -> None:
    line = trial_line(trial(0, TrialState.RUNNING, 0))
    assert trial_text(line) == "trial 0  epoch 0  val MSE -"


@pytest.mark.parametrize(("durations", "remaining", "workers", "running", "eta"), [
    ([], 5, 2, [], None),  # nothing finished yet: no estimate
    ([100.0], 0, 2, [], 0.0),
    ([100.0], 0, 2, [30.0], None),  # all runs finished, the leader's polish goes on
    ([100.0, 200.0], 4, 2, [], 300.0),  # 4 x 150 s over 2 workers
    ([100.0, 200.0], 4, 2, [50.0, 500.0], 200.0),  # the running ones' time is spent already
    ([10.0], 1, 1, [60.0], 0.0),  # running longer than the mean: never negative
    ([100.0], 1, 2, [40.0], 60.0),  # the last trial runs on one worker, not two
    ([100.0], 3, 2, [], 150.0),
])  # fmt: skip
def test_eta(durations: list, remaining: int, workers: int, running: list, eta: float | None,
             ) -> None:  # fmt: skip
    assert eta_seconds(durations, remaining, workers, running) == eta


def test_the_study_line_counts_pruned_and_stalled_and_names_the_best() -> None:
    started = T0
    trials = [
        trial(0, TrialState.COMPLETE, 0, 100, val_mse=0.01, tier="good", verdict="healthy"),
        trial(1, TrialState.PRUNED, 0, 50, val_mse=0.2, tier="below", verdict="stalled"),
        trial(2, TrialState.PRUNED, 100, 150, val_mse=0.3, tier="below", verdict="jump"),
        trial(3, TrialState.RUNNING, 150, curves=CLOCK_CURVES),
        # Finished before this command started: counted, but not in its ETA.
        trial(4, TrialState.COMPLETE, -900, -10, val_mse=0.02, tier="minimum"),
    ]
    p = progress(trials, target=10, workers=2, started=started, now=T0 + timedelta(seconds=200))
    s = p.study
    assert (s.finished, s.target, s.pruned, s.stalled) == (4, 10, 2, 1)
    assert (s.best_number, s.best_val, s.best_tier) == (0, 0.01, "good")
    assert s.elapsed_s == 200.0
    # Mean of this run's 100, 50, 50 s; 6 to go over 2 workers, less trial 3's 50 s.
    assert s.eta_s == pytest.approx((6 * 200 / 3 - 50) / 2)
    assert [t.number for t in p.running] == [3]
    assert study_text(s) == ("4/10 finished, 2 pruned, 1 stalled  best #0 val MSE 0.01 (good)  "
                             "elapsed 3:20  ETA 2:55")  # fmt: skip
    assert len(render(p).renderables) == 2  # a line per running trial, then the study's


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (0.4, "0:00"), (65, "1:05"), (3725, "1:02:05"), (float("inf"), "-"),
])  # fmt: skip
def test_clock_text(seconds: float | None, text: str) -> None:
    assert clock_text(seconds) == text


@pytest.mark.parametrize(("terminal", "plain", "term", "live"), [
    (True, False, "xterm-256color", True),
    (False, False, "xterm-256color", False),  # piped, redirected, nohup
    (True, True, "xterm", False),  # --plain
    (True, False, "dumb", False),  # a terminal that cannot move its cursor
    (True, False, None, False),
])  # fmt: skip
def test_the_live_view_only_on_a_terminal_that_can_redraw(
    terminal: bool, plain: bool, term: str | None, live: bool
) -> None:
    assert use_live_view(terminal, plain, term) is live
