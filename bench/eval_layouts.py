"""The honest evaluation of a full-size set, called again and again with the heap stirred in
between (as a sweep's trials do): does its speed depend on where its buffers land?

    python -m bench.eval_layouts [--calls 60] [--seed 0]

Each call allocates its state buffers afresh, so a layout-sensitive kernel shows two speeds in
one process. Prints every call's CPU milliseconds, then min / median / max and how many calls
took over 1.5x the fastest. Run it in two checkouts turn about to compare them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from model.data import VALIDATION_SEED, DataConfig, make_set
from model.kernels import flatten, predict_rows, to_rows
from model.params import init_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0, help="seed of the weights and of the stirring")
    args = ap.parse_args()
    data = make_set(VALIDATION_SEED, DataConfig())
    inputs = np.ascontiguousarray(data.inputs, dtype=np.float32)
    n_in, hidden = inputs.shape[-1], 64
    theta = to_rows(flatten(init_weights(n_in, hidden, args.seed), n_in, hidden), n_in, hidden)
    predict_rows(theta, inputs)  # compile or load the cache
    rng = np.random.default_rng(args.seed)
    kept: list[np.ndarray] = []
    ms: list[float] = []
    for _ in range(args.calls):
        # Small blocks of random sizes, some kept and some freed: the next call's buffers
        # come from another part of the heap.
        kept.append(np.empty(int(rng.integers(1, 4000)), np.uint8))
        if rng.random() < 0.3:
            kept.pop(int(rng.integers(len(kept))))
        start = time.process_time()
        predict_rows(theta, inputs)
        ms.append((time.process_time() - start) * 1000)
    fastest = min(ms)
    print(" ".join(f"{m:.0f}" for m in ms))
    print(f"CPU ms per evaluation of {inputs.shape[0]} x {inputs.shape[1]} steps: "
          f"min {fastest:.1f}  median {statistics.median(ms):.1f}  max {max(ms):.1f}; "
          f"over 1.5x the fastest: {sum(m > 1.5 * fastest for m in ms)} of {len(ms)}")  # fmt: skip


if __name__ == "__main__":
    main()
