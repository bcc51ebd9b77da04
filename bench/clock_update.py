"""One full-length clock update, with and without ``keep_freed_memory`` (issue 11).

    python -m bench.clock_update [--realisations 4] [--updates 6]

Runs the same forward + backward + Adam step ``--updates`` times in two fresh processes, one
with glibc's default thresholds and one with ``model.clock.memory.keep_freed_memory()``, and
prints wall, user and system seconds and minor page faults of each update: the first updates
warm up, compare the last. One thread.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time


def one_process(realisations: int, updates: int, keep: bool) -> None:
    import torch

    from model.clock.batch import draw_batch, error_sums, noise_rng, prefix_loss, prefix_mask
    from model.clock.config import ClockConfig
    from model.clock.memory import keep_freed_memory
    from model.clock.state import adam_for, initial_model
    from model.data import DataConfig

    torch.set_num_threads(1)
    if keep:
        keep_freed_memory()
    data, cfg = DataConfig(), ClockConfig(ignore_s=False)
    model = initial_model(cfg, data)
    opt, rng, t = adam_for(model), noise_rng(0), data.samples
    mask = prefix_mask((t,) * data.n_freq, t)
    for _ in range(updates):
        r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        x, y = draw_batch(data, t, realisations, rng)
        opt.zero_grad()
        prefix_loss(error_sums(model, x, y, mask), mask, True).loss.backward()
        opt.step()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        print(f"  wall {time.perf_counter() - w0:.3f} s  user {r1.ru_utime - r0.ru_utime:.3f} s"
              f"  sys {r1.ru_stime - r0.ru_stime:.3f} s  minor faults "
              f"{r1.ru_minflt - r0.ru_minflt}", flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--realisations", type=int, default=4, help="per frequency (batch = 4x)")
    p.add_argument("--updates", type=int, default=6)
    p.add_argument("--child", choices=("default", "keep"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        one_process(args.realisations, args.updates, args.child == "keep")
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for mode in ("default", "keep"):
        print(f"{mode}: batch {4 * args.realisations}, full length", flush=True)
        sizes = ["--realisations", str(args.realisations), "--updates", str(args.updates)]
        cmd = [sys.executable, "-m", "bench.clock_update", "--child", mode, *sizes]
        subprocess.run(cmd, env=env, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
