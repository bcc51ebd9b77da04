"""The markdown notes optuna-dashboard shows on a trial's page and on the study's page: what a
person reads first (the verdict and why, the tier against each criterion, honest against
online numbers, whether the model is at the floor, how it was trained). Pure functions of a
trial's record (``sweep.trial_record``) and the study's numbers; ``sweep.delivery`` and
``sweep.runner`` save them with ``optuna_dashboard.save_note``."""

from __future__ import annotations

from dataclasses import dataclass

from sweep.rules.criteria import RATIO_AT_FLOOR, TierGap, gaps, mse_ratio, mse_text
from sweep.trial_record import TrialRecord


@dataclass(frozen=True)
class TrialFacts:
    """What a trial's note tells beyond the trial's record: who it is, how it was trained, and
    what its numbers are measured against."""

    number: int
    method: str
    trained: str
    """How the model was trained, in a few words (the method's description of its config)."""
    disclosure: str | None
    record: TrialRecord
    """What the trial delivered: its numbers, verdict and advice."""
    best_online_loss: float | None
    floor: float


def trial_note(t: TrialFacts) -> str:
    r = t.record
    ratio = mse_ratio(r.train_mse, r.test_mse)
    lines = [
        f"## Trial {t.number}: {r.verdict}" + (" (at the floor)" if r.at_floor else ""),
        "",
        f"**Why:** {r.verdict_reason}",
        "",
        f"**What to do:** {r.action}",
    ]
    if r.action != r.plan_action:
        lines += ["", f"*The plan's row for '{r.verdict}' says:* {r.plan_action}"]
    lines += [
        "",
        f"Honest MSE of the best checkpoint (epoch {r.best_epoch} of {r.epochs}; frozen "
        "weights, whole sets, state reset at each block start):",
        "",
        "| criterion | value | minimum | good | excellent |",
        "|---|---|---|---|---|",
    ]
    rows = {"train MSE": r.train_mse, "test MSE": r.test_mse, "test/train": ratio}
    standing = list(reversed(gaps(r.train_mse, r.test_mse)))  # minimum first
    for name, value in rows.items():
        cells = [_cell(g, name, r.at_floor) for g in standing]
        shown = f"{value:.2f}" if name == "test/train" and value is not None else mse_text(value)
        lines.append(f"| {name} | {shown} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Validation MSE (what the sweep minimises): {mse_text(r.val_mse)}. Lowest online "
        f"training loss: {mse_text(t.best_online_loss)}: taken while the weights moved, it is "
        "not the model's MSE.",
        "",
    ]
    if r.value_step is not None:
        lines += [
            f"Optuna's value of this pruned trial is this validation MSE: reported at step "
            f"{r.value_step}, one past its last epoch (a pruned trial's value is its last "
            "reported one), it is not an epoch of the learning curve.",
            "",
        ]
    if r.at_floor:
        lines += [
            f"**At the floor:** a model that cannot tell time scores at best {t.floor:.4f} on "
            "this data (each block's mean); this one is no better.",
            "",
        ]
    lines.append(f"Trained with the {t.method} method: {t.trained}.")
    if t.disclosure:
        lines += ["", t.disclosure]
    return "\n".join(lines)


def _cell(gap: TierGap, measure: str, at_floor: bool) -> str:
    if measure == "test/train" and at_floor:
        # Two sets scored by a model that cannot tell time score alike: a ratio near 1 there
        # says nothing about generalisation.
        return RATIO_AT_FLOOR
    value = {"train MSE": gap.train_gap, "test MSE": gap.test_gap, "test/train": gap.ratio_gap}
    g = value[measure]
    # MSE gaps as the MSEs are printed; the ratio's to two decimals, as its bounds.
    spec = "+.2f" if measure == "test/train" else "+.5f"
    return ("met" if g < 0 else "missed") + f" ({g:{spec}})"


def study_note(title: str, lines: list[str]) -> str:
    return "\n".join([f"## {title}", "", *lines])
