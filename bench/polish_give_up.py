"""Replay a give-up bar on every recorded clock sweep's polish curves (--polish-give-up).

    python -m bench.polish_give_up bench/results/clock_sweep_*_spend.jsonl

A polish records its honest validation MSE after every epoch (100 evaluations). For each bar,
a run whose MSE at its goal epoch (``--after``, the sweep's --polish-goal-after in epochs) is
above the bar is given up there. Counted over every run that polished as a trial of its own
(rows with attempts, so a leader's continuation is not counted twice): runs given up, of them
runs whose recorded polish went on under the excellent bar (lost), and the polish epochs and
seconds the rest of their curves had cost. Several sweeps reran the same seeds on the same
code, so the counts are also given over distinct curves (seed and first two values alike).
The bar is chosen on this same data: the replay shows what it keeps and saves, not how it
would fare on unseen seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sweep.rules.criteria import EXCELLENT

BAR = EXCELLENT.max_train
BARS = (0.0015, 0.00175, 0.002, 0.0025, 0.003)


def runs(paths: list[Path]) -> list[dict]:
    """Every row that polished at least once as its own trial, tagged with its sweep."""
    out = []
    for path in paths:
        for line in path.read_text().splitlines():
            r = json.loads(line) if line.strip() else None
            if r and r.get("attempts") and r.get("polish_curve"):
                out.append({**r, "sweep": path.stem})
    return out


def replay(rows: list[dict], bar: float, after: int) -> dict:
    """What the bar gives up and saves over ``rows``."""
    given_up = [r for r in rows if len(r["polish_curve"]) > after - 1
                and r["polish_curve"][after - 1] > bar]  # fmt: skip
    lost = [r for r in given_up if min(r["polish_curve"]) < BAR]
    epochs = sum(len(r["polish_curve"]) - after for r in given_up)
    seconds = sum(r["polish_s"] * (len(r["polish_curve"]) - after) / len(r["polish_curve"])
                  for r in given_up)  # fmt: skip
    distinct = {(r["seed"], *(round(v, 6) for v in r["polish_curve"][:2])) for r in given_up}
    return {"bar": bar, "runs": len(rows), "given_up": len(given_up), "distinct": len(distinct),
            "lost": [f"{r['sweep']}#{r['number']}" for r in lost], "epochs_saved": epochs,
            "seconds_saved": round(seconds)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spend", type=Path, nargs="+", help="bench.clock_spend --json outputs")
    p.add_argument("--after", type=int, default=2, help="the goal epoch (default 2: 200 evals)")
    args = p.parse_args(argv)
    rows = runs(args.spend)
    at = args.after - 1
    reached = [r["polish_curve"][at] for r in rows
               if min(r["polish_curve"]) < BAR and len(r["polish_curve"]) > at]  # fmt: skip
    print(f"{len(rows)} polished runs in {len(args.spend)} sweeps; {len(reached)} reached "
          f"{BAR:g}; the highest of those at epoch {args.after}: {max(reached):.5f}")  # fmt: skip
    for bar in BARS:
        print(json.dumps(replay(rows, bar, args.after)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
