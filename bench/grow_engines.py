"""The grow stage in torch or compiled (``ClockConfig.grow_engine``): attempts that grow, and
their CPU (grow_engines.md).

    python -m bench.grow_engines run --seeds 0-39 --engines torch,compiled --jobs 2
    python -m bench.grow_engines summary

Each (seed, engine) runs attempt 0 of the sweep's grow stage (``bench.polish.sweep_config``
with ``tune_updates=0``, the sweep's ``stall_check`` and stall rescue, one thread) until it
goes on to the full-length stage (it "grew": T reached the sweep's grow_until, or its budget
ended with every block started) or the stall rule gives it up, as a sweep's trial would. One
JSON line per run: outcome, epochs, T per epoch, best validation MSE and process CPU seconds.
The same seed's two engines start from the same weights; their paths part in the last bits.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from statistics import median

import torch

from bench import provenance
from bench.grow_trajectories import parse_seeds
from bench.polish import sweep_config
from model.clock.config import STAGE_GROW
from model.clock.training import ClockTraining
from model.data import VALIDATION_SEED, DataConfig, make_set
from sweep.pruner import stall_check

DEFAULT_OUT = Path("bench/results/grow_engines.jsonl")


def run_one(job: tuple[int, str]) -> dict:
    seed, engine = job
    torch.set_num_threads(1)
    data = DataConfig()
    val = make_set(VALIDATION_SEED, data)
    # max_restarts 1: the trainer starts attempt 1 exactly where a sweep gives attempt 0 up.
    config = replace(sweep_config(seed), tune_updates=0, max_restarts=1, grow_engine=engine)
    cpu0 = time.process_time()
    run = ClockTraining.start(config, None, val, data, stall_check)
    prefixes = []
    while not run.finished and run.state.attempt == 0 and run.state.stage == STAGE_GROW:
        prefixes.append(run.run_epoch().prefix)
    grew = run.state.attempt == 0 and run.state.stage != STAGE_GROW
    return {"seed": seed, "engine": engine, "outcome": "grew" if grew else "stalled",
            "epochs": len(prefixes), "prefixes": prefixes, "best_val": run.state.best_val,
            "cpu_s": round(time.process_time() - cpu0, 2)}  # fmt: skip


def run(seeds: list[int], engines: list[str], jobs: int, out: Path) -> None:
    done = set()
    if out.exists():
        done = {(r["seed"], r["engine"]) for r in map(json.loads, out.read_text().splitlines())}
    todo = [(s, e) for s in seeds for e in engines if (s, e) not in done]

    def show(r: dict) -> str:
        return (f"seed {r['seed']:>3} {r['engine']:>8}: {r['outcome']:>7} after {r['epochs']} "
                f"epochs, T {r['prefixes'][-1] if r['prefixes'] else '-'}, "
                f"{r['cpu_s']:.0f} CPU-s")  # fmt: skip

    provenance.pool_to_jsonl(run_one, todo, jobs, out, show)


def summary(out: Path) -> str:
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    by = {(r["seed"], r["engine"]): r for r in rows}
    engines = sorted({r["engine"] for r in rows})
    seeds = sorted({s for s, _ in by if all((s, e) in by for e in engines)})
    lines = [f"{len(seeds)} seeds run by every engine", "",
             "| engine | grew | CPU-s all | CPU-s per attempt, median | grown attempts' CPU-s, "
             "median | CPU-s per grown attempt |", "|---|---|---|---|---|---|"]  # fmt: skip
    for e in engines:
        rs = [by[(s, e)] for s in seeds]
        grew = [r for r in rs if r["outcome"] == "grew"]
        total = sum(r["cpu_s"] for r in rs)
        per = total / len(grew) if grew else float("inf")
        lines.append(f"| {e} | {len(grew)} of {len(rs)} | {total:.0f} | "
                     f"{median(r['cpu_s'] for r in rs):.1f} | "
                     f"{median(r['cpu_s'] for r in grew) if grew else float('nan'):.1f} | "
                     f"{per:.1f} |")  # fmt: skip
    if len(engines) == 2:
        a, b = engines
        pairs: dict[tuple[str, str], list[int]] = {}
        for s in seeds:
            pairs.setdefault((by[(s, a)]["outcome"], by[(s, b)]["outcome"]), []).append(s)
        lines += ["", f"| {a} | {b} | seeds |", "|---|---|---|"]
        lines += [f"| {x} | {y} | {len(ss)}: {', '.join(map(str, ss))} |"
                  for (x, y), ss in sorted(pairs.items())]  # fmt: skip
        same = [s for s in seeds if by[(s, a)]["prefixes"] == by[(s, b)]["prefixes"]]
        lines.append(f"\nT per epoch the same in both on {len(same)} of {len(seeds)} seeds")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--seeds", default="0-39")
    r.add_argument("--engines", default="torch,compiled")
    r.add_argument("--jobs", type=int, default=2)
    for s in (r, sub.add_parser("summary")):
        s.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = p.parse_args()
    if a.cmd == "summary":
        print(summary(a.out))
    else:
        run(parse_seeds(a.seeds), a.engines.split(","), a.jobs, a.out)


if __name__ == "__main__":
    main()
