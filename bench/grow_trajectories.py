"""Grow-stage trajectories of the clock method, one JSON line per seed (data for a stall rule).

    python -m bench.grow_trajectories [--seeds 0-23] [--out bench/results/grow_trajectories.jsonl]

Each seed runs ``ClockConfig(seed=seed, grow_updates=2400, tune_updates=0,
updates_per_epoch=100)`` (every other field at its default) on the full-size data
(``DataConfig()``), validated on ``make_set(VALIDATION_SEED)`` after each epoch; no train set.
One thread. Per epoch it records the prefix T at the end of the epoch, the online loss, the
honest validation MSE (overall and per frequency), the gradient norm (mean and max over the
epoch's updates), the lr and the cumulative process (CPU) and wall seconds since the seed began.

A seed whose prefix has reached the full block length is run for two more epochs and then cut
short (``"stopped_early": "grown"``): the rest of its grow stage is expensive and says nothing
about stalls. Resumable: seeds already in the output file are skipped. A seed's line is written
only once it has finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from model.clock.config import ClockConfig
from model.clock.training import ClockTraining
from model.data import VALIDATION_SEED, DataConfig, make_set

DEFAULT_OUT = Path("bench/results/grow_trajectories.jsonl")
#: Epochs still run after the prefix first reaches the full length, before the cut.
EPOCHS_AFTER_FULL = 2


def parse_seeds(text: str) -> list[int]:
    """'0-23' or '0,3,5-7' -> a list of ints."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-")
            seeds.extend(range(int(lo), int(hi) + 1))
        elif part:
            seeds.append(int(part))
    return seeds


def done_seeds(path: Path) -> set[int]:
    if not path.exists():
        return set()
    seeds = set()
    for line in path.read_text().splitlines():
        if line.strip():
            seeds.add(int(json.loads(line)["seed"]))
    return seeds


def run_seed(seed: int, data: DataConfig, val_set, command: str) -> dict:
    config = ClockConfig(seed=seed, grow_updates=2400, tune_updates=0, updates_per_epoch=100)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run = ClockTraining.start(config, None, val_set, data)
    epochs, stopped_early, full_at = [], None, None
    while not run.finished:
        r = run.run_epoch()
        e = {
            "epoch": r.epoch,
            "prefix": r.prefix,
            "online_loss": r.online_loss,
            "val_mse": r.val_mse,
            "val_per_freq": list(r.val_per_freq),
            "grad_norm_mean": r.grad_norm_mean,
            "grad_norm_max": r.grad_norm_max,
            "lr": r.lr,
            "cpu_seconds": time.process_time() - cpu0,
            "wall_seconds": time.perf_counter() - wall0,
        }
        epochs.append(e)
        print(
            f"seed {seed:2d} epoch {r.epoch:2d} T={r.prefix:5d} online {r.online_loss:.4f} "
            f"val {r.val_mse:.4f} ("
            + " ".join(f"{v:.3f}" for v in r.val_per_freq)
            + f") grad {r.grad_norm_mean:.4f}/{r.grad_norm_max:.3f} lr {r.lr:.1e} "
            f"cpu {e['cpu_seconds']:.0f} s wall {e['wall_seconds']:.0f} s",
            flush=True,
        )
        if r.prefix >= data.samples and full_at is None:
            full_at = r.epoch
        if full_at is not None and r.epoch >= full_at + EPOCHS_AFTER_FULL and not run.finished:
            stopped_early = "grown"
            break
    return {
        "seed": seed,
        "command": command,
        "config": asdict(config),
        "data": asdict(data),
        "validation_seed": VALIDATION_SEED,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "stop_reason": run.state.stop_reason,
        "stopped_early": stopped_early,
        "epochs": epochs,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-23")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # set OMP_NUM_THREADS=1 in the shell too (read at import)
    rest = sys.argv[1:] if argv is None else argv
    command = "python -m bench.grow_trajectories " + " ".join(rest)
    data = DataConfig()
    val_set = make_set(VALIDATION_SEED, data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    skip = done_seeds(args.out)
    for seed in parse_seeds(args.seeds):
        if seed in skip:
            print(f"seed {seed}: already in {args.out}, skipped", flush=True)
            continue
        record = run_seed(seed, data, val_set, command.strip())
        with args.out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        last = record["epochs"][-1]
        print(
            f"seed {seed} done: T={last['prefix']} cpu {last['cpu_seconds']:.0f} s "
            f"stopped_early={record['stopped_early']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
