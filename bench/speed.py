"""Today's compiled engine against the previous one (c48fafc, ``bench.yardsticks.fast_v1``), in
one process: per-step training cost, honest evaluation of a set, the one-off compile, and the
breakdown of one full-size epoch.

    python -m bench.speed [--samples 10000] [--repeats 9] [--no-compile]

The two engines are timed turn about (v1, new, v1, new, ...) so that other load on the machine
falls on both alike; each line is the median of the repeats. The system load is printed too.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.yardsticks.fast_v1 import FastEngineV1
from model.data import TRAIN_SEED, VALIDATION_SEED, DataConfig, make_set
from model.l1.fast import FastEngine
from model.params import init_weights, score

ENGINES = {"v1": FastEngineV1, "new": FastEngine}
#: A worker's first use of the engine: one training epoch and one evaluation on a tiny set.
FIRST_USE = """
import time
start = time.perf_counter()
from model.data import DataConfig, make_set
from model.l1.fast import FastEngine
from model.params import init_weights
d = make_set(0, DataConfig(samples=4))
e = FastEngine(init_weights(5, 64, 0), 5, 64)
e.train_epoch(d, 1e-4, 1.0)
e.predict(d)
print(time.perf_counter() - start)
"""


def first_use_seconds(cache_dir: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", FIRST_USE], env=env, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return float(out.strip().splitlines()[-1])


def timed(fn) -> float:
    """CPU seconds of this process: on a machine shared with other jobs, wall time mostly
    measures how often the scheduler hands the core to someone else."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=10_000, help="samples per block")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--no-compile", action="store_true", help="skip the compile timing")
    args = p.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    cfg = DataConfig(samples=args.samples)
    train, val = make_set(TRAIN_SEED, cfg), make_set(VALIDATION_SEED, cfg)
    steps = train.inputs.shape[0] * train.inputs.shape[1]
    w = init_weights(5, 64, 0)
    engines = {k: cls(w, 5, 64) for k, cls in ENGINES.items()}
    tiny = make_set(0, DataConfig(samples=4))
    for e in engines.values():  # compile (or load the cache) outside the timings
        e.train_epoch(tiny, 1e-4, 1.0)
        e.predict(tiny)
    t_train = {k: [] for k in engines}
    t_eval = {k: [] for k in engines}
    for _ in range(args.repeats):
        for k, e in engines.items():
            t_train[k].append(timed(lambda e=e: e.train_epoch(train, 1e-4, 1.0)))
            t_eval[k].append(timed(lambda e=e: (e.predict(train), e.predict(val))))
    tr = {k: statistics.median(v) for k, v in t_train.items()}
    ev = {k: statistics.median(v) for k, v in t_eval.items()}
    print(f"full-size epoch ({steps:,} steps), CPU seconds, median of {args.repeats}, turn about:")
    print(
        f"{'':>5} {'train s':>8} {'us/step':>8} {'eval s':>7} {'us/blk-step':>11} {'epoch s':>8}"
    )
    for k in engines:
        print(f"{k:>5} {tr[k]:8.3f} {tr[k] / steps * 1e6:8.2f} {ev[k]:7.3f} "
              f"{ev[k] / (2 * steps) * 1e6:11.2f} {tr[k] + ev[k]:8.3f}")  # fmt: skip

    # Ratios of each turn's pair (timed a second apart), then their median: steadier than a
    # ratio of medians when the load of other jobs comes and goes.
    def ratio(a: list[float], b: list[float]) -> str:
        r = sorted(x / y for x, y in zip(a, b, strict=True))
        return f"{statistics.median(r):.2f}x (range {r[0]:.2f}-{r[-1]:.2f})"

    ep = {k: [a + b for a, b in zip(t_train[k], t_eval[k], strict=True)] for k in engines}
    print("ratio v1/new, median of the turns:")
    print(f"  train {ratio(t_train['v1'], t_train['new'])}")
    print(f"  evaluation {ratio(t_eval['v1'], t_eval['new'])}")
    print(f"  epoch {ratio(ep['v1'], ep['new'])}")
    # Same weights, both evaluations: the numbers must agree (the new engine's trained weights).
    trained = engines["new"].weights()
    old = FastEngineV1(trained, 5, 64).predict(val)
    new = FastEngine(trained, 5, 64).predict(val)
    print(f"evaluation of the same weights: max |new - v1| prediction "
          f"{np.abs(new - old).max():.1e}, val MSE {score(new, val).mse:.7f} vs "
          f"{score(old, val).mse:.7f}")  # fmt: skip
    if not args.no_compile:
        with tempfile.TemporaryDirectory() as cache:
            cold = first_use_seconds(cache)
            warm = first_use_seconds(cache)
        print(f"a worker's first epoch + evaluation on a tiny set (import included): "
              f"{cold:.1f} s with an empty numba cache, {warm:.1f} s with it filled")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:.0f} MB; load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
