"""Screen grow-stage variants of the clock method by how many seeds grow (issue 11).

    python -m bench.grow_screen --label lr1e-3 --set lr_scale=1e-3 --seeds 0-11

Each seed runs the grow stage of ``ClockConfig(seed=s, tune_updates=0, **overrides)`` on the
full-size data, validated honestly after each epoch, and ends at the first of:
- **grown**: the prefix T reached the block length (the tune stage finishes such a clock);
- **stalled**: the sweep's stall rule (``sweep.rules.stall.check_stalled``) fired, i.e. where
a
  clock sweep would stop the trial;
- the end of the grow stage: **partial** when T >= 3,000 and every block is under the rule's
  started threshold (clock-reliability.md: such a clock can be finished), else stalled.
One JSON line per (label, seed) is appended to ``--out``, with the command, the config, the
outcome, the per-epoch trajectory and the CPU seconds; done (label, seed) pairs are skipped.
One thread: run one screen per core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch

from bench import provenance
from bench.grow_trajectories import parse_seeds
from model.clock import state as clock_state
from model.clock.config import ClockConfig
from model.clock.training import ClockTraining
from model.data import VALIDATION_SEED, DataConfig, make_set
from sweep.pruner import stall_check
from sweep.rules.stall import STARTED_BLOCK_MSE, GrowEpoch, check_stalled

DEFAULT_OUT = Path("bench/results/grow_screen.jsonl")
#: T at or above which a grow stage that started every block counts as partly grown.
PARTIAL_PREFIX = 3000


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """['lr_scale=1e-3', 'balanced=false'] -> typed ClockConfig overrides."""
    types = {f.name: f.type for f in fields(ClockConfig)}
    out: dict[str, object] = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        if name not in types:
            raise SystemExit(f"grow_screen: unknown ClockConfig field {name!r}")
        kind = types[name]
        if kind == "bool":
            out[name] = text.lower() in ("1", "true", "yes")
        elif kind == "int":
            out[name] = int(text)
        elif kind == "float":
            out[name] = float(text)
        else:
            out[name] = text
    return out


def outcome(trajectory: list[GrowEpoch], full: int, last_epoch: int) -> tuple[str, str | None]:
    """(grown / stalled / partial / running, the stall rule's sentence)."""
    if trajectory and trajectory[-1].prefix >= full:
        return "grown", None
    reason = check_stalled(trajectory, full, last_epoch)
    if reason is not None:
        return "stalled", reason
    if len(trajectory) >= last_epoch:
        last = trajectory[-1]
        ok = last.prefix >= PARTIAL_PREFIX and last.worst_block < STARTED_BLOCK_MSE
        return ("partial" if ok else "stalled"), None
    return "running", None


def run_seed(seed: int, overrides: dict, data: DataConfig, val_set, keep: Path | None = None
             ) -> dict:  # fmt: skip
    config = ClockConfig(**{**overrides, "seed": seed, "tune_updates": 0})
    last_epoch = config.grow_updates // config.updates_per_epoch
    cpu0 = time.process_time()
    # The sweep's stall rule: with max_restarts 0 the trainer never starts over, but a config
    # with stall_rescue makes its L-BFGS call where the rule fires.
    run = ClockTraining.start(config, None, val_set, data, stall_check)
    trajectory: list[GrowEpoch] = []
    rows = []
    rescued = []
    verdict, reason = "running", None
    while verdict == "running" and not run.finished:
        r = run.run_epoch()
        trajectory.append(GrowEpoch(r.prefix, max(r.val_per_freq), r.online_loss,
                                    r.grad_norm_mean))  # fmt: skip
        per_freq = [round(v, 4) for v in r.val_per_freq]
        cpu = round(time.process_time() - cpu0, 1)
        rows.append([r.prefix, round(r.online_loss, 5), per_freq, round(r.grad_norm_mean, 5), cpu])
        if r.rescued:
            rescued.append(r.epoch)
        verdict, reason = outcome(trajectory, data.samples, last_epoch)
    if verdict == "running":  # the run stopped by itself (non-finite)
        verdict = "stalled"
    if keep is not None and verdict in ("grown", "partial"):
        keep.mkdir(parents=True, exist_ok=True)
        clock_state.save(run.state, keep / f"seed{seed}.pt")  # for tune-stage experiments
    return {"seed": seed, "config": asdict(config), "outcome": verdict, "reason": reason,
            "epochs": len(rows), "prefix": rows[-1][0], "best_val": run.state.best_val,
            "cpu_seconds": round(time.process_time() - cpu0, 1), "rescued_epochs": rescued,
            "trajectory": rows}  # fmt: skip


def done_pairs(path: Path) -> set[tuple[str, int]]:
    if not path.exists():
        return set()
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {(r["label"], r["seed"]) for r in rows}


def summary(path: Path) -> list[str]:
    """One markdown row per label: seeds, outcomes, CPU seconds, overrides."""
    rows: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            rows.setdefault(r["label"], []).append(r)
    out = ["| label | overrides | seeds | grown | partial | stalled | grown seeds | "
           "CPU s median / total |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, rs in rows.items():
        n = {k: sum(r["outcome"] == k for r in rs) for k in ("grown", "partial", "stalled")}
        cpu = sorted(r["cpu_seconds"] for r in rs)
        seeds = sorted(r["seed"] for r in rs)
        span = f"{len(seeds)} ({seeds[0]}-{seeds[-1]})"
        won = ", ".join(str(r["seed"]) for r in rs if r["outcome"] != "stalled") or "-"
        sets = " ".join(f"{k}={v}" for k, v in rs[0]["overrides"].items()) or "(defaults)"
        cost = f"{cpu[len(cpu) // 2]:.0f} / {sum(cpu):.0f}"
        out.append(f"| {label} | {sets} | {span} | {n['grown']} | {n['partial']} | "
                   f"{n['stalled']} | {won} | {cost} |")  # fmt: skip
    return out


def stall_modes(path: Path, labels: list[str] | None = None) -> list[str]:
    """Why each label's attempts ended as they did: one markdown row per label.

    - escape: the epoch at which T first left prefix_start (median; for grown / partial and
      for stalled attempts), "-" for never;
    - stalled at T = 100: never left the initial plateau (its 0.75-cycle target, the same for
      every block);
    - saturated: the stall rule's first case (T flat, gradient norm under its bar);
    - over: the grow budget ended short of full length with a block at or above the rule's
      started threshold;
    - one block out: of the stalls, how many had exactly one block's honest MSE at or above
      that threshold at the end, and how many of those were the 1 Hz block.
    """
    rows: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if labels is None or r["label"] in labels:
                rows.setdefault(r["label"], []).append(r)

    def escape(r: dict) -> int | None:
        start = r["config"]["prefix_start"]
        return next((i + 1 for i, e in enumerate(r["trajectory"]) if e[0] > start), None)

    def med(values: list) -> str:
        v = sorted(x for x in values if x is not None)
        return "-" if not v else f"{v[len(v) // 2]}"

    out = ["| label | attempts | escape epoch: grew / stalled (median) | stalled at T = 100 | "
           "saturated (T at stop, median) | over (T, median) | one block out (of it 1 Hz) |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, rs in rows.items():
        won = [r for r in rs if r["outcome"] != "stalled"]
        lost = [r for r in rs if r["outcome"] == "stalled"]
        plateau = [r for r in lost if escape(r) is None]
        sat = [r for r in lost if (r["reason"] or "").startswith("saturated")]
        over = [r for r in lost if r not in sat and r not in plateau]
        one = [r for r in lost
               if sum(v >= STARTED_BLOCK_MSE for v in r["trajectory"][-1][2]) == 1]  # fmt: skip
        one_1hz = [r for r in one if r["trajectory"][-1][2][0] >= STARTED_BLOCK_MSE]
        out.append(
            f"| {label} | {len(rs)} | {med([escape(r) for r in won])} / "
            f"{med([escape(r) for r in lost])} | {len(plateau)} | {len(sat)} "
            f"({med([r['prefix'] for r in sat])}) | {len(over)} "
            f"({med([r['prefix'] for r in over])}) | {len(one)} ({len(one_1hz)}) |"
        )
    return out


def paired(path: Path, a: str, b: str) -> list[str]:
    """Label ``a`` against label ``b`` on the seeds both ran: outcome pairs, and for the
    attempts that reached the polish stage the best honest validation MSE of the grow stage
    and its CPU seconds."""
    runs: dict[str, dict[int, dict]] = {a: {}, b: {}}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if r["label"] in runs:
                runs[r["label"]][r["seed"]] = r
    seeds = sorted(set(runs[a]) & set(runs[b]))
    pairs: dict[tuple[str, str], list[int]] = {}
    for s in seeds:
        pairs.setdefault((runs[a][s]["outcome"], runs[b][s]["outcome"]), []).append(s)
    out = [f"{len(seeds)} seeds run by both ({seeds[0]}-{seeds[-1]})" if seeds else "no seeds",
           f"| {a} | {b} | seeds | count |", "|---|---|---|---|"]  # fmt: skip
    for (x, y), ss in sorted(pairs.items()):
        out.append(f"| {x} | {y} | {', '.join(map(str, ss))} | {len(ss)} |")
    for label in (a, b):
        won = [runs[label][s] for s in seeds if runs[label][s]["outcome"] != "stalled"]
        vals = ", ".join(f"{r['seed']}: {r['best_val']:.4f} ({r['cpu_seconds']:.0f} s)"
                         for r in won)  # fmt: skip
        out.append(f"- {label}, grown or partial: best grow-stage val (CPU s): {vals or '-'}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--label")
    p.add_argument("--summary", action="store_true", help="print the table of --out and stop")
    p.add_argument(
        "--paired",
        nargs=2,
        metavar=("LABEL_A", "LABEL_B"),
        help="compare two labels seed by seed and stop",
    )
    p.add_argument(
        "--modes",
        action="store_true",
        help="print how the attempts of --out ended (stall modes) and stop",
    )
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--seeds", default="0-11")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--keep", type=Path, help="save grown and partial clocks' states here")
    args = p.parse_args(argv)
    if args.summary:
        print("\n".join(summary(args.out)))
        return 0
    if args.paired:
        print("\n".join(paired(args.out, *args.paired)))
        return 0
    if args.modes:
        print("\n".join(stall_modes(args.out, [args.label] if args.label else None)))
        return 0
    if not args.label:
        p.error("--label is required")
    overrides = parse_overrides(args.set)
    torch.set_num_threads(1)
    command = "python -m bench.grow_screen " + " ".join(sys.argv[1:] if argv is None else argv)
    where = {"commit": provenance.commit(), "machine": provenance.machine()}
    data = DataConfig()
    val_set = make_set(VALIDATION_SEED, data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    skip = done_pairs(args.out)
    for seed in parse_seeds(args.seeds):
        if (args.label, seed) in skip:
            continue
        record = {"label": args.label, "command": command, "overrides": overrides, **where,
                  **run_seed(seed, overrides, data, val_set, args.keep)}  # fmt: skip
        with args.out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"{args.label} seed {seed}: {record['outcome']} T={record['prefix']} "
              f"epochs {record['epochs']} best val {record['best_val']:.4f} "
              f"cpu {record['cpu_seconds']} s", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
