"""End the grow stage's last epoch as soon as T reaches grow_until? (grow_tail.md)

    python -m bench.grow_tail grow --seeds 1,4604,3988 --jobs 2 --clocks /tmp/tail
    python -m bench.grow_tail polish --clocks /tmp/tail --evals 300 --jobs 2
    python -m bench.grow_tail summary

The epoch in which T reaches the sweep's ``GROW_UNTIL`` (5,783) runs its remaining Adam updates
at that prefix, the grow stage's dearest, before the L-BFGS polish starts. ``grow`` runs one
sweep trial's grow stage per seed (``bench.polish.sweep_config``: restarts and the sweep's
``stall_check``, one thread) and keeps two clocks of its grown attempt: ``full``, the state as
the sweep leaves it today, and ``cut``, the weights at the first update at T = GROW_UNTIL (the
weights the epoch would end with if it stopped there), with the process CPU seconds of each.
The cut's polish starts from those weights, or from the best earlier epoch's where that scored
lower (as the sweep picks its polish start); where that is the full clock's polish start too,
the two polishes are the same. ``polish`` runs ``bench.polish.run_one`` (variant ``lbfgs``, no
target) on every saved clock, for pairs that start apart; ``summary`` tabulates.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench import provenance
from bench.polish import run_one, sweep_config
from model.clock import state as clock_state
from model.clock.training import ClockTraining
from model.data import VALIDATION_SEED, DataConfig, make_set
from model.lstm import weights_of
from sweep.pruner import stall_check

DEFAULT_OUT = Path("bench/results/grow_tail.jsonl")
LEVEL = 0.001


def grow_seed(job: tuple[int, str]) -> dict:
    seed, clocks = job
    torch.set_num_threads(1)
    data = DataConfig()
    val = make_set(VALIDATION_SEED, data)
    config = replace(sweep_config(seed), tune_updates=0)
    until = config.grown_at(data.samples)
    cpu0 = time.process_time()
    run = ClockTraining.start(config, None, val, data, stall_check)
    snap: dict = {}
    update = ClockTraining._update

    def watched(self, x, y, mask, lr):  # the first update at T = until: the cut's weights
        if x.shape[1] >= until and "weights" not in snap:
            snap.update(weights=weights_of(self.model), cpu=time.process_time() - cpu0,
                        attempt=self.state.attempt, best=self.state.best_weights,
                        best_val=self.state.best_val)  # fmt: skip
        return update(self, x, y, mask, lr)

    lbfgs = ClockTraining._grow_lbfgs

    def watched_lbfgs(self, prefix, evaluations):  # Adam's last update reached T = until
        if prefix >= until and "weights" not in snap:
            snap.update(weights=weights_of(self.model), cpu=time.process_time() - cpu0,
                        attempt=self.state.attempt, best=self.state.best_weights,
                        best_val=self.state.best_val)  # fmt: skip
        return lbfgs(self, prefix, evaluations)

    ClockTraining._update, ClockTraining._grow_lbfgs = watched, watched_lbfgs
    try:
        while not run.finished:
            run.run_epoch()
    finally:
        ClockTraining._update, ClockTraining._grow_lbfgs = update, lbfgs
    cpu = round(time.process_time() - cpu0, 2)
    s = run.state
    grown = s.stage != "grow" and max(s.history[s.best_epoch - 1].val_per_freq) < 0.2
    row = {"kind": "grow", "seed": seed, "attempt": s.attempt, "grown": grown, "cpu_s": cpu,
           "epochs": s.epoch, "best_val": s.best_val}  # fmt: skip
    if not grown:
        return row
    clock_state.save(s, Path(clocks) / f"seed{seed}-full.pt")
    if snap and snap["attempt"] == s.attempt:
        cut_val = run.evaluate(val, snap["weights"]).mse
        start = snap["weights"] if cut_val < snap["best_val"] else snap["best"]
        cut = replace(s, weights=start, best_weights=start)
        clock_state.save(cut, Path(clocks) / f"seed{seed}-cut.pt")
        same = start is not None and all(np.array_equal(start[k], w)
                                         for k, w in s.best_weights.items())  # fmt: skip
        row.update(cut_cpu_s=round(snap["cpu"], 2), cut_val=cut_val,
                   cut_from_latest=cut_val < snap["best_val"], same_start=same)  # fmt: skip
    else:  # T reached until in an L-BFGS call or the rescue: the epoch ended there already
        row.update(cut_cpu_s=None)
    return row


def _pool(fn, todo, jobs, out):
    def show(r: dict) -> str:
        return json.dumps({k: v for k, v in r.items() if k != "machine"})

    provenance.pool_to_jsonl(fn, todo, jobs, out, show)


def polish_one(job: tuple[str, str, int]) -> dict:
    r = run_one(job)
    r["kind"] = "polish"
    return r


def summary(path: Path) -> str:
    """Per grown attempt: its grow CPU as the sweep runs it and with the cut, and whether the
    cut's polish starts from the same weights (then the polish is the same, bit for bit);
    the polish curves of any pair that starts apart."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    polish = {r["clock"]: r for r in rows if r.get("kind") == "polish"}
    lines = ["| seed | attempt | grow CPU-s | with the cut | saved | polish starts alike |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    saved, apart = [], []
    for g in sorted((r for r in rows if r.get("kind") == "grow" and r["grown"]),
                    key=lambda r: r["seed"]):  # fmt: skip
        cut = g.get("cut_cpu_s")
        if cut is None:  # an L-BFGS call at the epoch's end took T there: nothing to cut
            lines.append(f"| {g['seed']} | {g['attempt']} | {g['cpu_s']:.0f} | - | 0 | yes |")
            saved.append(0.0)
            continue
        saved.append(g["cpu_s"] - cut)
        alike = "yes" if g.get("same_start") else "no"
        lines.append(f"| {g['seed']} | {g['attempt']} | {g['cpu_s']:.0f} | {cut:.0f} | "
                     f"{g['cpu_s'] - cut:.0f} | {alike} |")  # fmt: skip
        if not g.get("same_start"):
            apart.append(g["seed"])
    total = sum(r["cpu_s"] for r in rows if r.get("kind") == "grow" and r["grown"])
    lines.append(f"\n{sum(s > 0 for s in saved)} of {len(saved)} grown attempts had a tail; "
                 f"saved {sum(saved):.0f} of {total:.0f} grow CPU-s")  # fmt: skip
    for seed in apart:
        f, c = polish.get(f"seed{seed}-full"), polish.get(f"seed{seed}-cut")
        if f and c:
            lines.append(f"seed {seed} polish, val MSE per 100 evaluations: full "
                         + " ".join(f"{v:.5f}" for v in f["val_mse"]) + "; cut "
                         + " ".join(f"{v:.5f}" for v in c["val_mse"]))  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grow")
    g.add_argument("--seeds", required=True)
    g.add_argument("--clocks", type=Path, required=True)
    g.add_argument("--jobs", type=int, default=2)
    c = sub.add_parser("polish")
    c.add_argument("--clocks", type=Path, required=True)
    c.add_argument("--evals", type=int, default=300)
    c.add_argument("--jobs", type=int, default=2)
    for s in (g, c, sub.add_parser("summary")):
        s.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = p.parse_args()
    if a.cmd == "summary":
        print(summary(a.out))
    elif a.cmd == "grow":
        a.clocks.mkdir(parents=True, exist_ok=True)
        todo = [(int(s), str(a.clocks)) for s in a.seeds.split(",")]
        _pool(grow_seed, todo, a.jobs, a.out)
    else:
        todo = [(str(p), "lbfgs", a.evals) for p in sorted(a.clocks.glob("*.pt"))]
        _pool(polish_one, todo, a.jobs, a.out)


if __name__ == "__main__":
    main()
