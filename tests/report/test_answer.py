"""The answer a finished run prints last, from a study's summary: the best trial, its tier, the
one-sentence conclusion and the next commands."""

from __future__ import annotations

import pytest

from sweep.report.answer import NextCommands, answer_lines, conclusion_sentence
from sweep.report.summary import Summary, TrialRow
from sweep.rules.criteria import gaps

COMMANDS = NextCommands(report="python study.py report", html="python study.py report --html "
                        "report.html", dashboard="optuna-dashboard sqlite:///studies.db",
                        eval="python study.py eval")  # fmt: skip
FLOOR = 0.5


def row(number: int, val: float, tier: str, state: str = "COMPLETE", method: str = "l1",
        verdict: str = "healthy") -> TrialRow:  # fmt: skip
    return TrialRow(number=number, state=state, verdict=verdict, epochs=3, train_mse=val,
                    val_mse=val, test_mse=val, test_train_ratio=1.0, tier=tier,
                    best_online_loss=None, stop_reason=None,
                    continued_from=None, method=method,
                    params={"lr": 1e-4} if method == "l1" else {"seed": 7})  # fmt: skip


def summary(rows: list[TrialRow], best: TrialRow | None, method: str = "l1") -> Summary:
    standing = tuple(gaps(best.train_mse, best.test_mse)) if best else ()
    return Summary("s", tuple(rows), best, standing, (), FLOOR, method)


def test_at_the_floor_the_answer_says_the_learning_rate_is_not_the_cause() -> None:
    rows = [row(0, 0.503, "below"), row(1, 0.501, "below"),
            row(2, 0.62, "below", "PRUNED", verdict="jump")]  # fmt: skip
    lines = answer_lines(summary(rows, rows[1]), COMMANDS)
    text = "\n".join(lines)
    assert "3 finished trials (2 complete, 1 pruned)" in text
    assert (
        "Best: trial 1 (lr 1.00e-04): honest MSE train 0.50100, val 0.50100, test 0.50100; "
        "tier below." in text
    )
    assert "even the minimum tier is missed" in text
    assert "predict-zero floor (0.500): the learning rate is not the cause" in text
    # The commands come last, eval naming the best trial.
    assert lines[-5:] == ["See more:", "  python study.py report",
                          "  python study.py report --html report.html",
                          "  optuna-dashboard sqlite:///studies.db",
                          "  python study.py eval --trial 1"]  # fmt: skip


@pytest.mark.parametrize(("val", "tier", "says"), [
    (0.0002, "excellent", "2,500-fold and meets the excellent tier"),
    (0.2, "below", "2.5-fold but meets no tier"),
])  # fmt: skip
def test_a_clock_that_beats_the_floor_says_by_how_much_and_its_tier(
    val: float, tier: str, says: str
) -> None:
    rows = [row(0, val, tier, method="clock"),
            row(1, 0.4, "below", "PRUNED", "clock", verdict="stalled")]  # fmt: skip
    s = summary(rows, rows[0], "clock")
    assert says in conclusion_sentence(s)
    text = "\n".join(answer_lines(s, COMMANDS))
    assert "2 finished trials (1 complete, 1 pruned, 1 of them stalled)" in text
    assert "Best: trial 0 (seed 7)" in text
    assert ("even the minimum tier is missed" in text) == (tier == "below")


def test_no_finished_trial_gives_no_best_and_no_eval_command() -> None:
    lines = answer_lines(summary([row(0, 0.5, "below", "RUNNING")], None), COMMANDS)
    assert "0 finished trials" in lines[1]
    assert not any(line.startswith("Best:") or "eval" in line for line in lines)
    assert "no answer yet" in "\n".join(lines)
