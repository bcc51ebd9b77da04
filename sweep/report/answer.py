"""The answer a finished run prints last: the best trial, its honest numbers and tier, what
they mean in one sentence, and the commands that show more. A pure function of the study's
``Summary`` and the commands, so its wording is tested without running a sweep."""

from __future__ import annotations

from dataclasses import dataclass

from model import registry
from sweep.report.outcomes import outcomes
from sweep.report.summary import FINISHED_NAMES, Summary, TrialRow, axis_text
from sweep.rules.criteria import BELOW, at_floor, mse_text
from sweep.rules.divergence import STALLED


@dataclass(frozen=True)
class NextCommands:
    """The commands that show the results, spelled for this run's storage and study."""

    report: str
    html: str
    dashboard: str
    eval: str
    """Without its ``--trial N``, which the answer adds for the best trial."""


def conclusion_sentence(summary: Summary) -> str:
    """What the best trial means, in one sentence."""
    b = summary.best
    if b is None:
        return "No trial finished with a score, so there is no answer yet."
    method = registry.get(b.method)
    if at_floor(b.val_mse, summary.floor):
        return (f"The best trial is at the predict-zero floor ({summary.floor:.3f}): "
                f"{method.reporting.floor_action}.")  # fmt: skip
    times = summary.floor / b.val_mse if b.val_mse else float("inf")
    if b.tier and b.tier != BELOW:
        return (
            f"The {b.method} method beats the predict-zero floor ({summary.floor:.3f}) "
            f"{times:,.0f}-fold and meets the {b.tier} tier of the success criteria."
        )
    return (
        f"The {b.method} method beats the predict-zero floor ({summary.floor:.3f}) "
        f"{times:,.1f}-fold but meets no tier of the success criteria."
    )


def _counts(summary: Summary) -> str:
    finished = [r for r in summary.rows if r.state in FINISHED_NAMES]
    parts = [f"{sum(r.state == 'COMPLETE' for r in finished)} complete",
             f"{sum(r.state == 'PRUNED' for r in finished)} pruned"]  # fmt: skip
    stalled = sum(r.verdict == STALLED for r in finished)
    if stalled:
        parts.append(f"{stalled} of them stalled")
    reached = ", ".join(f"{n} {t}" for t, n in outcomes(summary.rows).reached.items() if n)
    return f"{len(finished)} finished trials ({', '.join(parts)})" + (
        f"; at least {reached}" if reached else "")  # fmt: skip


def best_line(b: TrialRow) -> str:
    return (f"Best: trial {b.number} ({axis_text(b)}): honest MSE train "
            f"{mse_text(b.train_mse)}, val {mse_text(b.val_mse)}, test {mse_text(b.test_mse)}; "
            f"tier {b.tier or '-'}")  # fmt: skip


def answer_lines(summary: Summary, commands: NextCommands) -> list[str]:
    """The last lines of a finished run."""
    lines = ["", f"done. Study {summary.study_name!r}: {_counts(summary)}."]
    b = summary.best
    if b is not None:
        lines.append(best_line(b) + ".")
        missed = [g for g in summary.standing if not g.met]
        if missed and len(missed) == len(summary.standing):
            weakest = missed[-1]  # the loosest tier (minimum) comes last
            lines.append(f"Against the criteria: even the {weakest.name} tier is missed "
                         f"({', '.join(weakest.failing)}).")  # fmt: skip
    lines.append(conclusion_sentence(summary))
    lines += ["", "See more:", f"  {commands.report}", f"  {commands.html}",
              f"  {commands.dashboard}"]  # fmt: skip
    if b is not None:
        lines.append(f"  {commands.eval} --trial {b.number}")
    return lines
