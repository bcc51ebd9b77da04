"""Per-step cost of the reference and the compiled trainer, side by side in one process.

    python -m bench.throughput [--steps 2000] [--repeats 5]

Prints microseconds per model-step (median of the repeats), the ratio, how the compiled cost
grows with samples and epochs, and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from model.data import DataConfig, make_set
from model.l1.fast import FastEngine
from model.l1.reference import ReferenceEngine
from model.lstm import build_model, weights_of


def per_step_us(engine_cls, samples: int, epochs: int = 1, repeats: int = 5) -> float:
    data = make_set(1, DataConfig(samples=samples))
    w = weights_of(build_model(5, 64, seed=0))
    times = []
    for _ in range(repeats):
        engine = engine_cls(w, 5, 64)
        start = time.perf_counter()
        steps = 0
        for _ in range(epochs):
            steps += engine.train_epoch(data, lr=1e-4, clip=1.0).steps
        times.append((time.perf_counter() - start) / steps * 1e6)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--steps", type=int, default=2000, help="steps per reference timing")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    samples = max(1, args.steps // 4)
    per_step_us(FastEngine, 10, repeats=1)  # compile (or load the cache) outside the timing
    ref = per_step_us(ReferenceEngine, samples, repeats=args.repeats)
    fast = per_step_us(FastEngine, samples, repeats=args.repeats)
    print(f"steps per timing: {4 * samples}, median of {args.repeats}, one thread")
    print(f"reference (nn.LSTM + autograd + torch Adam): {ref:9.1f} us/step")
    print(f"fast (numba, compiled loop):                 {fast:9.1f} us/step")
    print(f"ratio: {ref / fast:.1f}x")
    print("compiled cost at two sizes (total seconds; linear means the ratio is ~2):")
    rows = [(10_000, 1), (20_000, 1), (10_000, 2)]
    secs = {}
    for n, e in rows:
        us = per_step_us(FastEngine, n, epochs=e, repeats=3)
        secs[(n, e)] = us * 4 * n * e / 1e6
        print(f"  {n:>6} samples/block x {e} epoch(s): {secs[(n, e)]:6.2f} s ({us:.1f} us/step)")
    print(f"  samples x2 -> time x{secs[(20_000, 1)] / secs[(10_000, 1)]:.2f}; "
          f"epochs x2 -> time x{secs[(10_000, 2)] / secs[(10_000, 1)]:.2f}")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
