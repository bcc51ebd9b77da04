"""Is a stalled grow stage at a local minimum of its prefix problem? (issue 20)

    python -m bench.grow_stall_probe --seeds 2,3,7,8 [--set FIELD=VALUE ...] [--evals 300]

Each seed runs the grow stage of ``ClockConfig(seed=s, tune_updates=0, **overrides)`` (as
``bench.grow_screen`` does) until the sweep's stall rule fires or the budget ends. From the
weights there it runs one L-BFGS call (strong Wolfe, fresh history, ``--evals`` evaluations,
restarted from steepest descent when it stops short) on the stalled prefix's plain MSE, which
is deterministic with S ignored, and prints the prefix MSE per block before and after, the
gradient norm, and each block's MSE on the next prefix (1.5 T) before and after. A stall that
L-BFGS cannot take under the growth threshold is a local minimum (or a saddle too flat to
leave), not a first-order method's slow convergence. One JSON line per seed to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bench.grow_screen import outcome, parse_overrides
from bench.grow_trajectories import parse_seeds
from model.clock.config import STAGE_GROW, ClockConfig
from model.clock.polish import Polisher, lbfgs_for, prefix_batch
from model.clock.training import ClockTraining
from model.data import VALIDATION_SEED, DataConfig, make_set
from sweep.rules.stall import GrowEpoch

DEFAULT_OUT = Path("bench/results/grow_stall_probe.jsonl")


def block_mse(run: ClockTraining, prefix: int) -> list[float]:
    cfg, data = run.state.config, run.data
    x, y, mask = prefix_batch(data, cfg.block_prefixes(prefix, data),
                              cfg.target_frequencies(prefix, data, STAGE_GROW))  # fmt: skip
    with torch.no_grad():
        out, _ = run.model(x, run.model.init_state(x.shape[0]))
    err = ((out - y) ** 2) * mask
    return [round(float(v), 5) for v in err.sum(1) / mask.sum(1)]


def probe(seed: int, overrides: dict, data: DataConfig, val_set, evals: int) -> dict:
    config = ClockConfig(**{**overrides, "seed": seed, "tune_updates": 0})
    last_epoch = config.grow_updates // config.updates_per_epoch
    run = ClockTraining.start(config, None, val_set, data)
    trajectory: list[GrowEpoch] = []
    verdict = "running"
    while verdict == "running" and not run.finished:
        r = run.run_epoch()
        trajectory.append(GrowEpoch(r.prefix, max(r.val_per_freq), r.online_loss,
                                    r.grad_norm_mean))  # fmt: skip
        verdict, _ = outcome(trajectory, data.samples, last_epoch)
    t = run.state.prefix
    nxt = config.next_prefix(t, data.samples)
    before, before_next = block_mse(run, t), block_mse(run, nxt)
    cfg = run.state.config
    batch = prefix_batch(data, cfg.block_prefixes(t, data),
                         cfg.target_frequencies(t, data, STAGE_GROW))  # fmt: skip
    polisher = Polisher(run.model, lbfgs_for(run.model, cfg.polish_history), data,
                        cfg.ignore_s, batch)  # fmt: skip
    cpu0 = time.process_time()
    step = polisher.run(evals)
    after, after_next = block_mse(run, t), block_mse(run, nxt)
    return {"seed": seed, "outcome": verdict, "epochs": len(trajectory), "prefix": t,
            "targets": list(cfg.target_frequencies(t, data, STAGE_GROW)),
            "before": before, "after": after, "mean_before": round(sum(before) / 4, 5),
            "mean_after": round(sum(after) / 4, 5), "grad_norm_after": step.grad_norm,
            "evaluations": step.evaluations, "restarts": step.restarts,
            "converged": step.converged, "next_prefix": nxt, "next_before": before_next,
            "next_after": after_next,
            "lbfgs_cpu_seconds": round(time.process_time() - cpu0, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="2,3,7,8")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--evals", type=int, default=300)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    overrides = parse_overrides(args.set)
    args_given = sys.argv[1:] if argv is None else argv
    command = "python -m bench.grow_stall_probe " + " ".join(args_given)
    data = DataConfig()
    val_set = make_set(VALIDATION_SEED, data)
    for seed in parse_seeds(args.seeds):
        record = {"command": command, "overrides": overrides,
                  **probe(seed, overrides, data, val_set, args.evals)}  # fmt: skip
        with args.out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"seed {seed}: {record['outcome']} at T={record['prefix']} targets "
              f"{record['targets']}: prefix MSE {record['before']} -> {record['after']} "
              f"(mean {record['mean_before']} -> {record['mean_after']}, grad "
              f"{record['grad_norm_after']:.2g}, {record['evaluations']} evals, "
              f"converged {record['converged']}); next T={record['next_prefix']}: "
              f"{record['next_before']} -> {record['next_after']}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
