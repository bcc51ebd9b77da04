"""Replay the project's stall rule (``sweep.rules.stall.check_stalled``) over the recorded
grow
stages and print, per seed, its outcome and when the rule stops it.

    python -m bench.stall_replay [bench/results/grow_trajectories.jsonl]

Exit status 1 if the rule would stop a recorded success (grown, or partly grown: see
``bench.yardsticks.stall_rule.outcome``). ``bench.yardsticks.stall_rule`` holds the parametric
family the thresholds were searched in (``bench.grow_stall_search``); this script checks the rule
the sweep uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.yardsticks.stall_rule import load, outcome
from sweep.rules.stall import GrowEpoch, diagnose_grow

FULL_LENGTH = 10_000
LAST_GROW_EPOCH = 24


def grow_epochs(epochs: list[dict]) -> list[GrowEpoch]:
    return [GrowEpoch(e["prefix"], max(e["val_per_freq"]), e["online_loss"], e["grad_norm_mean"])
            for e in epochs]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "bench/results/grow_trajectories.jsonl")
    print("seed outcome  T_end  stopped@epoch  cpu_s@stop  cpu_s_total  reason")
    pruned = stopped = 0
    for r in sorted(load(path), key=lambda r: r["seed"]):
        ep = r["epochs"]
        kind = outcome(ep)
        d = diagnose_grow(grow_epochs(ep), FULL_LENGTH, LAST_GROW_EPOCH)
        total = ep[-1]["cpu_seconds"]
        if d is None:
            print(f"{r['seed']:4d} {kind:8s} {ep[-1]['prefix']:6d} {'-':>13s} {'-':>11s} "
                  f"{total:11.1f}  goes on to the full-length stage")  # fmt: skip
            continue
        cpu = ep[d.epoch - 1]["cpu_seconds"]
        pruned += kind != "stalled"
        stopped += kind == "stalled"
        flag = "  PRUNED A SUCCESS" if kind != "stalled" else ""
        print(f"{r['seed']:4d} {kind:8s} {ep[-1]['prefix']:6d} {d.epoch:13d} {cpu:11.1f} "
              f"{total:11.1f}  {d.reason[:60]}{flag}")  # fmt: skip
    print(f"stalls stopped: {stopped}; successes stopped: {pruned}")
    return 1 if pruned else 0


if __name__ == "__main__":
    raise SystemExit(main())
