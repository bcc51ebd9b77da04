"""End the grow stage early and let the polish finish the clock? (partial_polish.md)

    python -m bench.partial_polish grow --seeds 1,4,5,8,13,0 --jobs 2 --clocks /tmp/partial
    python -m bench.partial_polish polish --clocks /tmp/partial --match '*-T3855' --jobs 2
    python -m bench.partial_polish summary

``grow`` runs attempt 0 of the sweep's grow stage for each seed as ``bench.grow_screen``
does (``replace(sweep_config(seed), tune_updates=0, max_restarts=0)``, the sweep's
``stall_check``, one thread) and saves the clock state at the end of the first epoch whose T
reaches each cut, and at full length, with the process CPU seconds so far. ``polish`` runs
``bench.polish.run_one`` (variant ``lbfgs``: the sweep's polish from the state's best
weights, the whole budget, no target) on every saved state. Both append JSON lines to
``--out``; ``summary`` scores each cut: grow CPU + polish CPU to an MSE level.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path
from statistics import median

import numpy as np
import torch

from bench import provenance
from bench.polish import run_one, sweep_config
from model.clock import state as clock_state
from model.clock.training import ClockTraining
from model.data import VALIDATION_SEED, DataConfig, make_set
from sweep.pruner import stall_check

CUTS = (2570, 3855, 5782)
LEVELS = (0.001, 0.0005)
DEFAULT_OUT = Path("bench/results/partial_polish.jsonl")


def grow_seed(job: tuple[int, str]) -> dict:
    """Attempt 0 of one seed's grow stage, with a state saved at every cut and at full length."""
    seed, clocks = job
    torch.set_num_threads(1)
    data = DataConfig()
    val = make_set(VALIDATION_SEED, data)
    config = replace(sweep_config(seed), tune_updates=0, max_restarts=0)
    cpu0 = time.process_time()
    run = ClockTraining.start(config, None, val, data, stall_check)
    prefixes, saves, todo = [], [], [*CUTS, data.samples]
    while not run.finished and (not prefixes or prefixes[-1] < data.samples):
        r = run.run_epoch()
        prefixes.append(r.prefix)
        cpu = round(time.process_time() - cpu0, 2)
        s = run.state
        same = s.best_weights is not None and all(
            np.array_equal(s.best_weights[k], w) for k, w in s.weights.items()
        )
        for cut in [c for c in todo if r.prefix >= c]:
            todo.remove(cut)
            name = f"seed{seed}-{'full' if cut == data.samples else f'T{cut}'}"
            clock_state.save(s, Path(clocks) / f"{name}.pt")
            saves.append({"cut": cut, "clock": name, "epoch": r.epoch, "prefix": r.prefix,
                          "grow_cpu_s": cpu, "best_epoch": s.best_epoch,
                          "best_val": s.best_val, "best_is_latest": same})  # fmt: skip
    return {"kind": "grow", "seed": seed, "prefixes": prefixes, "saves": saves,
            "cpu_s": round(time.process_time() - cpu0, 2)}  # fmt: skip


def screen_prefixes(path: Path, label: str) -> dict[int, list[int]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["seed"]: [e[0] for e in r["trajectory"]] for r in rows if r["label"] == label}


def first_under(curve: list[float], cpu: list[float], level: float) -> float | None:
    """Polish CPU at the first 100-evaluation mark with val MSE under ``level``."""
    return next((c for v, c in zip(curve, cpu, strict=True) if v < level), None)


def score(rows: list[dict]) -> list[dict]:
    """One row per (seed, cut): grow CPU, polish CPU to each level, totals, MSE at the end."""
    polish = {r["clock"]: r for r in rows if r.get("kind") == "polish"}
    out = []
    for g in (r for r in rows if r.get("kind") == "grow"):
        for s in g["saves"]:
            # The polish starts from best_weights: saves with the same best epoch share it.
            twins = [t["clock"] for t in g["saves"] if t["best_epoch"] == s["best_epoch"]]
            p = next((polish[c] for c in twins if c in polish), None)
            if p is None:
                continue
            row = {"seed": g["seed"], "cut": s["cut"], "prefix": s["prefix"],
                   "best_epoch": s["best_epoch"], "clock": p["clock"],
                   "grow": s["grow_cpu_s"], "start": p["start_val"],
                   "mse600": p["val_mse"][-1], "polish600": p["cpu_s"][-1],
                   "curve": p["val_mse"], "cpu": p["cpu_s"]}  # fmt: skip
            for level in LEVELS:
                c = first_under(p["val_mse"], p["cpu_s"], level)
                row[f"p{level}"] = c
                row[f"t{level}"] = None if c is None else round(s["grow_cpu_s"] + c, 1)
            out.append(row)
    return out


def summary(path: Path) -> str:
    rows = score([json.loads(line) for line in path.read_text().splitlines() if line.strip()])

    def f(x, spec=".0f"):
        return "n.r." if x is None else format(x, spec)

    lines = ["| seed | cut | T at save | grow CPU | start val | polish CPU to 0.001 | total | "
             "polish CPU to 0.0005 | total | MSE at 600 | grow + 600 evals CPU |",
             "|---" * 11 + "|"]  # fmt: skip
    for r in sorted(rows, key=lambda r: (r["seed"], r["cut"])):
        lines.append(f"| {r['seed']} | {r['cut']} | {r['prefix']} | {r['grow']:.0f} | "
                     f"{r['start']:.4f} | {f(r['p0.001'])} | {f(r['t0.001'])} | "
                     f"{f(r['p0.0005'])} | {f(r['t0.0005'])} | {r['mse600']:.6f} | "
                     f"{r['grow'] + r['polish600']:.0f} |")  # fmt: skip
    return "\n".join(lines + [""] + against_full(rows))


def against_full(rows: list[dict]) -> list[str]:
    """Each cut against full length on the seeds with both: cut better / worse / equal, and
    the medians (n.r. counts as infinite CPU)."""
    inf = float("inf")
    full = {r["seed"]: r for r in rows if r["cut"] == max(r2["cut"] for r2 in rows)}
    keys = (("t0.001", "total CPU to 0.001"), ("t0.0005", "total CPU to 0.0005"),
            ("mse600", "MSE at 600"))  # fmt: skip
    out = ["| cut | seeds | measure | cut better / worse / equal | median cut | median full |",
           "|---|---|---|---|---|---|"]  # fmt: skip
    for cut in CUTS:
        pairs = [(r, full[r["seed"]]) for r in rows if r["cut"] == cut and r["seed"] in full]
        for key, name in keys:
            a = [inf if c[key] is None else c[key] for c, _ in pairs]
            b = [inf if f[key] is None else f[key] for _, f in pairs]
            ab = list(zip(a, b, strict=True))
            n = (sum(x < y for x, y in ab), sum(x > y for x, y in ab), sum(x == y for x, y in ab))
            med = [median(v) if v else inf for v in (a, b)]
            out.append(f"| {cut} | {len(pairs)} | {name} | {n[0]} / {n[1]} / {n[2]} | "
                       f"{med[0]:.4g} | {med[1]:.4g} |")  # fmt: skip
        a = [c["mse600"] for c, _ in pairs]
        b = [at_cpu(f, c["grow"] + c["polish600"]) for c, f in pairs]
        ab = list(zip(a, b, strict=True))
        n = (sum(x < y for x, y in ab), sum(x > y for x, y in ab), sum(x == y for x, y in ab))
        out.append(f"| {cut} | {len(pairs)} | MSE at the cut's grow + 600 CPU (added) | "
                   f"{n[0]} / {n[1]} / {n[2]} | {median(a):.4g} | {median(b):.4g} |")  # fmt: skip
    return out


def at_cpu(row: dict, total: float) -> float:
    """The val MSE of ``row`` at its last 100-evaluation mark within ``total`` CPU-s, grow
    included (its start value if none)."""
    marks = [v for v, c in zip(row["curve"], row["cpu"], strict=True) if row["grow"] + c <= total]
    return marks[-1] if marks else row["start"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cmd", choices=("grow", "polish", "summary"))
    p.add_argument("--seeds", default="1,4,5,8,13,0")
    p.add_argument("--clocks", type=Path, default=Path("/tmp/partial"))
    p.add_argument("--match", default="*", help="glob of the clocks' names (no .pt)")
    p.add_argument("--evals", type=int, default=600)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--screen", type=Path, default=Path("bench/results/grow_screen.jsonl"))
    p.add_argument("--label", default="lb50-plateau-rescue300-grow4000")
    a = p.parse_args(argv)
    if a.cmd == "summary":
        print(summary(a.out))
        return 0
    a.clocks.mkdir(parents=True, exist_ok=True)
    where = {"commit": provenance.commit(), "machine": provenance.machine(), "jobs": a.jobs}
    if a.cmd == "grow":
        screen = screen_prefixes(a.screen, a.label)
        todo, work = [(int(s), str(a.clocks)) for s in a.seeds.split(",")], grow_seed
    else:
        rows = a.out.read_text().splitlines() if a.out.exists() else []
        done = {json.loads(line).get("clock") for line in rows if line.strip()}
        paths = [c for c in sorted(a.clocks.glob(f"{a.match}.pt")) if c.stem not in done]
        todo, work = [(str(c), "lbfgs", a.evals) for c in paths], run_one
    with multiprocessing.get_context("spawn").Pool(a.jobs) as pool:
        for r in pool.imap_unordered(work, todo):
            if a.cmd == "grow":
                r["matches_screen"] = r["prefixes"] == screen.get(r["seed"])
                print(f"seed {r['seed']}: {len(r['prefixes'])} epochs, {r['cpu_s']:.0f} CPU-s, "
                      f"same T as the screen: {r['matches_screen']}", flush=True)  # fmt: skip
            else:
                r["kind"] = "polish"
                print(f"{r['clock']}: {r['start_val']:.5f} -> {r['val_mse'][-1]:.6f} in "
                      f"{r['cpu_s'][-1]:.0f} CPU-s", flush=True)  # fmt: skip
            with a.out.open("a") as f:
                f.write(json.dumps({**r, **where}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
