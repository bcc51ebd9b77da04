"""Peak memory and CPU time of one full-length loss+gradient evaluation of a clock, in one piece
(the yardstick: one forward pass over all 10,000 steps, then backward) against the project's
checkpointed chunks (``model.clock.batch.error_sums``), each in a fresh process.

    python -m bench.memory [--chunks 250,500,1000] [--repeats 4]

Each line: the variant, the process's peak RSS before the first evaluation (torch, the model,
the batch) and after ``--repeats`` evaluations, the difference, the median CPU seconds per
evaluation, and the loss and gradient norm (equal to float rounding across variants).
One thread per process.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_process(chunk: int, repeats: int) -> str:
    import torch

    import model.clock.batch as batch
    from model.clock.polish import full_length_batch
    from model.data import DataConfig
    from model.lstm import build_model

    torch.set_num_threads(1)
    data = DataConfig()
    model = build_model(data.input_size, 64, 1)
    x, y = full_length_batch(data)
    mask = torch.ones(y.shape)
    base = _peak_mb()

    def loss() -> torch.Tensor:
        if chunk == 0:  # the yardstick: one piece
            out, _ = model(x, model.init_state(x.shape[0]))
            return torch.mean((out - y) ** 2)
        batch.CHUNK_STEPS = chunk
        return batch.error_sums(model, x, y, mask).sum() / y.numel()

    seconds, value = [], 0.0
    for _ in range(repeats):
        model.zero_grad()
        start = time.process_time()
        total = loss()
        total.backward()
        seconds.append(time.process_time() - start)
        value = float(total.detach())
    norm = float(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).norm())
    peak = _peak_mb()
    name = "one piece" if chunk == 0 else f"chunks of {chunk}"
    return (f"{name:>16}: base {base:.0f} MB, peak {peak:.0f} MB (+{peak - base:.0f} MB), "
            f"CPU {sorted(seconds)[len(seconds) // 2]:.3f} s/evaluation, loss {value:.9g}, "
            f"gradient norm {norm:.9g}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", default="250,500,1000")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(one_process(args.one, args.repeats), flush=True)
        return 0
    for chunk in [0, *(int(c) for c in args.chunks.split(","))]:
        cmd = [sys.executable, "-m", "bench.memory", "--one", str(chunk),
               "--repeats", str(args.repeats)]  # fmt: skip
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
