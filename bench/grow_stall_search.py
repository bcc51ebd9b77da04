"""Search stall-rule families and thresholds on recorded grow trajectories.

    python -m bench.grow_stall_search [bench/results/grow_trajectories.jsonl]

Each family is a condition checked after every grow epoch n on the history so far; all of
them require epoch n >= E and T < the full length, and all but 'bound' require T unchanged
over the last K epochs (prefixes[n-1] == prefixes[n-1-K]):

- val:   the worst block's validation MSE above X in each of the last K epochs;
- sat:   saturated: mean gradient norm under g and online loss above L in each of them;
- sat_post: sat, only where T > the initial prefix (rule 1 of bench.yardsticks.stall_rule at
  E = 1);
- flat:  no progress: online loss at epoch n >= r x online loss at epoch n-K+1, and above L;
- bound: T below B at epoch E exactly (a budget rule: too little left to grow).

A setting is admissible when it fires on no seed labelled 'grown' or 'partial'. Per family,
the best admissible setting stops the most stalls, then has the smallest summed firing epoch,
then the largest margin. Also: leave-one-success-out (is a held-out success pruned by the
setting chosen without it?) and how many settings tie with the best.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path

from bench.yardsticks.stall_rule import FULL_LENGTH, PREFIX_START, first_firing, load, outcome

Rule = Callable[[dict, int], bool]  # (seed arrays, epoch n) -> fires at n


def arrays(record: dict) -> dict:
    ep = record["epochs"]
    return {"T": [e["prefix"] for e in ep], "W": [max(e["val_per_freq"]) for e in ep],
            "on": [e["online_loss"] for e in ep], "g": [e["grad_norm_mean"] for e in ep],
            "cpu": [e["cpu_seconds"] for e in ep]}  # fmt: skip


def flat(a: dict, n: int, k: int) -> bool:
    return n >= k + 1 and a["T"][n - 1] == a["T"][n - 1 - k] and a["T"][n - 1] < FULL_LENGTH


def family_val(e: int, k: int, x: float) -> Rule:
    return lambda a, n: n >= e and flat(a, n, k) and min(a["W"][n - k : n]) > x


def family_sat(e: int, k: int, g: float, lo: float) -> Rule:
    return lambda a, n: (n >= e and flat(a, n, k) and max(a["g"][n - k : n]) < g
                         and min(a["on"][n - k : n]) > lo)  # fmt: skip


def family_sat_post(e: int, k: int, g: float, lo: float) -> Rule:
    """'sat' above the initial prefix only (rule 1 of bench.yardsticks.stall_rule when e = 1)."""
    return lambda a, n: (
        n >= e
        and flat(a, n, k)
        and a["T"][n - 1] > PREFIX_START
        and max(a["g"][n - k : n]) < g
        and min(a["on"][n - k : n]) > lo
    )


def family_flat(e: int, k: int, r: float, lo: float) -> Rule:
    return lambda a, n: (n >= e and k >= 2 and flat(a, n, k) and a["on"][n - 1] > lo
                         and a["on"][n - 1] >= r * a["on"][n - k])  # fmt: skip


def family_bound(e: int, b: int) -> Rule:
    return lambda a, n: n == e and a["T"][n - 1] < b


GRIDS: dict[str, tuple[Callable[..., Rule], list[tuple]]] = {
    "val": (family_val, list(itertools.product(range(2, 25), range(1, 11),
                                               [round(0.3 + 0.05 * i, 2) for i in range(15)]))),
    "sat": (family_sat, list(itertools.product(range(2, 25), range(1, 9),
                                               [0.01, 0.02, 0.05, 0.1, 0.2],
                                               [0.01, 0.012, 0.015, 0.02, 0.03, 0.05, 0.1]))),
    "sat_post": (family_sat_post, list(itertools.product(range(1, 25), range(1, 9),
                                                         [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
                                                          2.0, 5.0],
                                                         [0.01, 0.012, 0.015, 0.02]))),
    "flat": (family_flat, list(itertools.product(range(2, 25), range(2, 9),
                                                 [0.7, 0.8, 0.9, 0.95, 1.0],
                                                 [0.01, 0.012, 0.015, 0.02, 0.03, 0.05, 0.1]))),
    "bound": (family_bound, list(itertools.product(range(2, 25),
                                                   [150, 225, 338, 507, 761, 1142, 1713]))),
}  # fmt: skip


def first(a: dict, rule: Rule) -> int | None:
    return next((n for n in range(1, len(a["T"]) + 1) if rule(a, n)), None)


def evaluate(seeds: list[dict], rule: Rule) -> dict:
    fired, missed, pruned, epochs_sum, cpu_sum = {}, [], [], 0, 0.0
    for s in seeds:
        n = first(s["a"], rule)
        if s["outcome"] != "stalled":
            if n:
                pruned.append(s["seed"])
            continue
        if n:
            fired[s["seed"]] = n
            epochs_sum += n
            cpu_sum += s["a"]["cpu"][n - 1]
        else:
            missed.append(s["seed"])
            epochs_sum += len(s["a"]["T"]) + 1
            cpu_sum += s["a"]["cpu"][-1]
    return {"fired": fired, "missed": missed, "pruned": pruned, "epochs_sum": epochs_sum,
            "cpu_sum": cpu_sum}  # fmt: skip


def search(seeds: list[dict], family: str) -> list[tuple[tuple, dict]]:
    make, grid = GRIDS[family]
    out = [(p, evaluate(seeds, make(*p))) for p in grid]
    ok = [(p, r) for p, r in out if not r["pruned"]]
    # Most stalls caught, earliest, then the most conservative setting (later E, longer K).
    ok.sort(key=lambda pr: (len(pr[1]["missed"]), pr[1]["epochs_sum"], -pr[0][0], -pr[0][1]))
    return ok


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "bench/results/grow_trajectories.jsonl")
    seeds = [{"seed": r["seed"], "outcome": outcome(r["epochs"]), "a": arrays(r)}
             for r in sorted(load(path), key=lambda r: r["seed"])]  # fmt: skip
    kinds = {k: [s["seed"] for s in seeds if s["outcome"] == k]
             for k in ("grown", "partial", "stalled")}  # fmt: skip
    print(
        f"{len(seeds)} seeds:",
        {k: len(v) for k, v in kinds.items()},
        "successes:",
        kinds["grown"] + kinds["partial"],
    )
    stalls = len(kinds["stalled"])
    total = sum(s["a"]["cpu"][-1] for s in seeds if s["outcome"] == "stalled")
    print(f"no rule: stalls' grow stages cost {total:.0f} CPU s in all")
    successes = [s for s in seeds if s["outcome"] != "stalled"]
    for family in GRIDS:
        ok = search(seeds, family)
        print(f"\n== {family}: {len(ok)} admissible of {len(GRIDS[family][1])}")
        if not ok:
            continue
        best = ok[0][1]
        ties = [p for p, r in ok if len(r["missed"]) == len(best["missed"])
                and r["epochs_sum"] <= best["epochs_sum"] * 1.1]  # fmt: skip
        for p, r in ok[:6]:
            print(
                f"  {p}: stops {stalls - len(r['missed'])}/{stalls}, summed epoch "
                f"{r['epochs_sum']}, CPU s until stopped {r['cpu_sum']:.0f}"
            )
        print(
            f"  within 10% of the best summed epoch (same stalls stopped): {len(ties)} "
            f"settings, e.g. {ties[:8]}"
        )
        # Leave one success out.
        for held in successes:
            rest = [s for s in seeds if s is not held]
            chosen = search(rest, family)
            if not chosen:
                continue
            p = chosen[0][0]
            n = first(held["a"], GRIDS[family][0](*p))
            print(
                f"  LOO without seed {held['seed']}: chose {p}; held out: "
                + (f"PRUNED at epoch {n}" if n else "kept")
            )
    # Sensitivity of the chosen rule (bench.yardsticks.stall_rule: rule 1 + rule 2) to its
    # thresholds.
    print(
        "\nbench.yardsticks.stall_rule sensitivity: stalls stopped by rule 1 (before epoch 24) / "
        "successes pruned, per (patience, saturated_grad_norm), unlearnt_loss 0.012"
    )
    records = sorted(load(path), key=lambda r: r["seed"])
    for k in (1, 2, 3, 4, 5):
        cells = []
        for g in (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0):
            early = bad = 0
            for r in records:
                hit = first_firing(r["epochs"], patience=k, saturated_grad_norm=g)
                if hit and outcome(r["epochs"]) != "stalled":
                    bad += 1
                elif hit and hit[1].startswith("saturated"):
                    early += 1
            cells.append(f"{g}:{early}/{bad}")
        print(f"  patience {k}: " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
