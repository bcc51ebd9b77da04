"""The text report, its JSON twin, and the study's conclusion for its dashboard note: the
``Summary`` of ``sweep.report.summary`` put into words."""

from __future__ import annotations

import math
from dataclasses import asdict

from model import registry
from sweep.report.outcomes import outcome_lines, outcomes
from sweep.report.summary import (
    FINISHED_NAMES,
    MethodRow,
    Summary,
    TrialRow,
    axis_text,
    axis_value,
    ties_text,
)
from sweep.rules.criteria import FLOOR_FRACTION, RATIO_AT_FLOOR, TierGap, at_floor, mse_text


def to_json(summary: Summary) -> dict:
    def clean(x: object) -> object:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    standing = [
        {"tier": g.name, "met": g.met, "train_gap": g.train_gap, "test_gap": g.test_gap,
         "ratio_gap": g.ratio_gap, "limits": asdict(g.tier)}
        for g in summary.standing
    ]  # fmt: skip
    return clean({
        "study": summary.study_name,
        "trials": [asdict(r) for r in summary.rows],
        "best": None if summary.best is None else asdict(summary.best),
        "standing": standing,
        "floor": {"floor_mse": summary.floor, "at_floor_above": FLOOR_FRACTION * summary.floor},
        "notes": list(summary.notes),
        "outcomes": outcomes(summary.rows)._asdict(),
        "method": summary.method,
        "ties": None if summary.ties is None else summary.ties._asdict(),
        "methods": [
            {"study": m.study, "method": m.method, "finished": m.finished,
             "best": None if m.best is None else asdict(m.best)}
            for m in summary.methods
        ],
    })  # fmt: skip


def _f(x: float | None, spec: str | None = None) -> str:
    """An MSE (``spec`` None) or another number."""
    if spec is None:
        return mse_text(x)
    return "-" if x is None else format(x, spec)


def _x(r: TrialRow) -> str:
    """The trial's value on its method's sweep axis (the column is named after it)."""
    value = axis_value(r)[1]
    if value is None:
        return "-"
    return format(value, ".2e") if isinstance(value, float) else f"{value:g}"


def _ratio(b: TrialRow, g: TierGap, floor: float) -> str:
    """The ratio's standing; a model at the floor has test ~ train because it predicts about
    zero on both, so its ratio near 1 says nothing about generalising."""
    if at_floor(b.val_mse, floor):
        return f"ratio {_f(b.test_train_ratio, '.2f')} ({RATIO_AT_FLOOR})"
    return f"ratio {_f(b.test_train_ratio, '.2f')} (<{g.tier.max_ratio}, gap {g.ratio_gap:+.2f})"


def render_methods(methods: tuple[MethodRow, ...]) -> list[str]:
    lines = ["", "Methods side by side (each study's best trial by honest validation MSE):"]
    for m in methods:
        b = m.best
        score = "no finished trial" if b is None else (
            f"train {_f(b.train_mse)} val {_f(b.val_mse)} test {_f(b.test_mse)} "
            f"tier {b.tier} (trial #{b.number})"
        )  # fmt: skip
        lines.append(f"  {m.study:<16} {m.method:<6} {m.finished:>3} finished  {score}")
    return lines


def render_text(summary: Summary) -> str:
    method = registry.get(summary.method)
    axis = method.reporting.axis
    head = (f"{'#':>4} {'state':<9} {axis:>9} {'verdict':<12} {'ep':>3} {'train MSE':>10} "
            f"{'val MSE':>9} {'test MSE':>9} {'ratio':>6} {'tier':<9} {'online':>8}")  # fmt: skip
    # A method that trains in stages: which stage gave each trial's delivered weights.
    staged = bool(method.stages)
    head += "  from" if staged else ""
    lines = [f"study {summary.study_name!r} (method {summary.method}): "
             f"{len(summary.rows)} trials", "", head]  # fmt: skip
    for r in summary.rows:
        lines.append(
            f"{r.number:>4} {r.state:<9} {_x(r):>9} {r.verdict or '-':<12} "
            f"{_f(r.epochs, 'd'):>3} {_f(r.train_mse):>10} {_f(r.val_mse):>9} "
            f"{_f(r.test_mse):>9} {_f(r.test_train_ratio, '.2f'):>6} {r.tier or '-':<9} "
            f"{_f(r.best_online_loss):>8}" + (f"  {r.delivered_stage or '-'}" if staged else "")
        )
    lines += ["", *outcome_lines(outcomes(summary.rows)), ""]
    lines.append("MSE columns are honest (frozen weights, whole set); 'online' is the lowest "
                 "per-epoch mean training loss, which is not an MSE of the model.")  # fmt: skip
    b = summary.best
    if b is None:
        lines.append("No finished trial yet.")
    else:
        stage = f", delivered by its {b.delivered_stage} stage" if b.delivered_stage else ""
        lines.append(f"Best trial by validation MSE: #{b.number} ({axis_text(b)}, "
                     f"{b.state.lower()}, val MSE {_f(b.val_mse)}, tier {b.tier}"
                     f"{stage})")  # fmt: skip
        if summary.ties is not None:
            scored = sum(r.val_mse is not None and r.state in FINISHED_NAMES for r in summary.rows)
            lines.append(ties_text(summary.ties, scored))
        lines.append("Against the success criteria (gap = value - limit, must be < 0):")
        for g in summary.standing:
            mark = "met" if g.met else "missed: " + ", ".join(g.failing)
            lines.append(
                f"  {g.name:<9} train {_f(b.train_mse)} (<{g.tier.max_train}, gap "
                f"{g.train_gap:+.5f})  test {_f(b.test_mse)} (<{g.tier.max_test}, gap "
                f"{g.test_gap:+.5f})  {_ratio(b, g, summary.floor)}  {mark}"
            )
    if len(summary.methods) > 1:
        lines += render_methods(summary.methods)
    for note in summary.notes:
        lines.append("")
        lines.append(note)
    return "\n".join(lines)


def conclusion(summary: Summary) -> list[str]:
    """The study's conclusion in a few markdown lines, for its optuna-dashboard note."""
    finished = [r for r in summary.rows if r.state in FINISHED_NAMES]
    verdicts: dict[str, int] = {}
    for r in finished:
        verdicts[r.verdict or "-"] = verdicts.get(r.verdict or "-", 0) + 1
    lines = [f"{len(finished)} finished trials (method {summary.method}).", ""]
    lines.append("Verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    lines += ["", *(f"- {line}" for line in outcome_lines(outcomes(summary.rows)))]
    b = summary.best
    if b is not None:
        lines += ["", f"**Best trial: #{b.number}** ({b.state.lower()}): honest train "
                  f"{_f(b.train_mse)}, validation {_f(b.val_mse)}, test {_f(b.test_mse)}, "
                  f"tier {b.tier}."]  # fmt: skip
    for note in summary.notes:
        lines += ["", note]
    return lines
