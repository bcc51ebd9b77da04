"""Seed-by-seed comparison of two grow-trajectory recordings (AVX-512 vs AVX2 oneDNN kernels).

    python -m bench.grow_avx2_compare [avx2.jsonl] [avx512.jsonl]

Prints a markdown table over the seeds present in the first file: outcome and final T in each
recording, the T trajectory under AVX2, where the sweep's stall rule (``sweep.rules.divergence.
diagnose_grow``, as in ``bench.stall_replay``) fires on the AVX2 trajectory, and CPU seconds.
"""

from __future__ import annotations

import sys
from itertools import groupby
from pathlib import Path

from bench.stall_replay import FULL_LENGTH, LAST_GROW_EPOCH, grow_epochs
from bench.yardsticks.stall_rule import load, outcome
from sweep.rules.stall import diagnose_grow


def runs(prefixes: list[int]) -> str:
    parts = []
    for t, g in groupby(prefixes):
        n = len(list(g))
        parts.append(f"{t}x{n}" if n > 1 else f"{t}")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    new = Path(args[0] if args else "bench/results/grow_trajectories_avx2.jsonl")
    old = Path(args[1] if len(args) > 1 else "bench/results/grow_trajectories.jsonl")
    ref = {r["seed"]: r for r in load(old)}
    print(
        "| seed | AVX-512 outcome | AVX-512 T end | AVX2 outcome | AVX2 T end | AVX2 T per epoch "
        "| AVX2 best val | stall rule fires (epoch, CPU s) | AVX2 CPU s total | AVX-512 CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    counts = {"avx2": {}, "avx512": {}}
    for r in sorted(load(new), key=lambda r: r["seed"]):
        ep = r["epochs"]
        k2 = outcome(ep)
        d = diagnose_grow(grow_epochs(ep), FULL_LENGTH, LAST_GROW_EPOCH)
        fire = "-" if d is None else f"{d.epoch}, {ep[d.epoch - 1]['cpu_seconds']:.1f}"
        o = ref.get(r["seed"])
        k5 = outcome(o["epochs"]) if o else "n/a"
        t5 = o["epochs"][-1]["prefix"] if o else "n/a"
        c5 = f"{o['epochs'][-1]['cpu_seconds']:.0f}" if o else "n/a"
        counts["avx2"][k2] = counts["avx2"].get(k2, 0) + 1
        counts["avx512"][k5] = counts["avx512"].get(k5, 0) + 1
        best = min(e["val_mse"] for e in ep)
        cut = " (cut: grown)" if r.get("stopped_early") else ""
        print(f"| {r['seed']} | {k5} | {t5} | **{k2}** | {ep[-1]['prefix']}{cut} | "
              f"{runs([e['prefix'] for e in ep])} | {best:.4f} | {fire} | "
              f"{ep[-1]['cpu_seconds']:.0f} | {c5} |")  # fmt: skip
    print()
    print(f"AVX2: {counts['avx2']}; AVX-512 on the same seeds: {counts['avx512']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
