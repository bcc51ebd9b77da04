"""Replay polish budget rules on a finished clock sweep's recorded polish curves.

    python -m bench.clock_spend studies.db --json spend.jsonl
    python -m bench.polish_policy spend.jsonl

For each trial that polished (in the order the trials finished), the rule decides after which
polish epoch (100 evaluations each) it would have stopped, from the honest validation MSE the
sweep recorded after every epoch of its 600-evaluation polish:
- ``budget``: every run spends the whole budget (the sweep before the leader rule);
- ``target``: a run stops at its first epoch under the excellent bar (0.001); a run that leads
  its study by ``sweep.rules.leader`` at that point is marked: it would go on past the recorded
  curve (its longer polish is not in the record, so its delivered value here is a bound);
- ``target-final``: the same, the lead decided by final values instead of goal MSEs (the first
  version of the rule, kept to show why it was replaced).
Epochs saved are the recorded polish epochs a rule would not have run. The finishing order is
the recorded one; under a rule that stops earlier, trials would finish in another order.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from sweep.rules.criteria import EXCELLENT
from sweep.rules.leader import leads

BAR = EXCELLENT.max_train


def replay(rows: list[dict], rule: str, after: int = 1) -> list[tuple[int, int, float, bool]]:
    """(trial, epochs run, delivered value, leads) for each trial that polished; its goal is
    judged from its ``after``-th polish epoch on."""
    done: list[tuple[float, bool]] = []  # (compared value, stopped as converged) per finished
    out = []
    for r in sorted(rows, key=lambda r: r["finished_after_s"] or math.inf):
        curve = r["polish_curve"]
        if not curve:
            continue
        if rule == "budget":
            out.append((r["number"], len(curve), min(curve), False))
            continue
        goal_at = next((i for i, v in enumerate(curve) if v < BAR and i + 1 >= after),
                       len(curve) - 1)  # fmt: skip
        goal = curve[goal_at]
        if rule == "target":
            led = leads(goal, [v for v, converged in done if not converged])
        else:
            led = leads(goal, [v for v, _ in done])
        epochs = len(curve) if led else goal_at + 1
        out.append((r["number"], epochs, min(curve[:epochs]), led))
        # Stopped as converged under this rule too: it converged by its goal epoch without
        # meeting the target (the trainer reports a target met first).
        converged = (r["stop_reason"] == "converged" and epochs == len(curve)
                     and curve[-1] >= BAR)  # fmt: skip
        done.append((min(curve[:epochs]) if rule == "target-final" else goal, converged))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spend", type=Path, help="bench.clock_spend --json output")
    args = p.parse_args(argv)
    rows = [json.loads(line) for line in args.spend.read_text().splitlines() if line.strip()]
    full = sum(len(r["polish_curve"]) for r in rows)
    for rule, after in (("budget", 1), ("target-final", 1), ("target", 1), ("target", 2),
                        ("target", 3)):  # fmt: skip
        runs = replay(rows, rule, after)
        ran = sum(e for _, e, _, _ in runs)
        leaders = [n for n, _, _, led in runs if led]
        best = min((v for _, _, v, _ in runs), default=math.nan)
        excellent = sum(v < BAR for _, _, v, _ in runs)
        print(
            f"{rule}, judged from polish epoch {after}: {ran} of {full} recorded polish epochs "
            f"run; excellent {excellent}; "
            f"leaders (would polish on): {leaders or 'none'}; best delivered {best:.5f}"
            + (" (before any leader's longer polish)" if leaders else "")
        )
        print("  " + ", ".join(f"#{n}: {e} ep {v:.5f}{' L' if led else ''}"
                               for n, e, v, led in runs))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
