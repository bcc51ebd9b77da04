"""How far one ulp carries: the previous engine against itself with one weight moved by one ulp,
and today's engine against it, epoch by epoch, from the same initial weights.

    python -m bench.ulp_sensitivity [--epochs 3] [--samples 10000] [--lr 1e-4]

Today's engine reorders float32 sums and computes exp/tanh by its own polynomials, so its
arithmetic differs from the previous engine's in the last bits. Whether the sweep's trial values
can be identical across the two engines depends on how much training amplifies such a
difference; the control is the previous engine disturbed by one ulp in a single weight, which is
no change of engine at all. Prints |val MSE - previous engine's| per epoch for each.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.yardsticks.fast_v1 import FastEngineV1
from model.data import TRAIN_SEED, VALIDATION_SEED, DataConfig, make_set
from model.l1.fast import FastEngine
from model.params import Weights, init_weights, score

#: The weights moved by one ulp, one control run each: a recurrent weight, an input weight
#: (of the noisy mix S) and the head's.
NUDGED = (("lstm.weight_hh_l0", (7, 3)), ("lstm.weight_ih_l0", (100, 0)), ("head.weight", (0, 5)))


def nudged(weights: Weights, name: str, index: tuple[int, ...]) -> Weights:
    out = {k: v.copy() for k, v in weights.items()}
    out[name][index] = np.nextafter(out[name][index], np.float32(np.inf))
    return out


def val_curve(engine, train, val, epochs: int, lr: float) -> list[float]:
    curve = []
    for _ in range(epochs):
        engine.train_epoch(train, lr, 1.0)
        curve.append(score(engine.predict(val), val).mse)
    return curve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--samples", type=int, default=10_000, help="samples per block")
    p.add_argument("--lr", type=float, default=1e-4)
    args = p.parse_args(argv)
    cfg = DataConfig(samples=args.samples)
    train, val = make_set(TRAIN_SEED, cfg), make_set(VALIDATION_SEED, cfg)
    w = init_weights(5, 64, 0)
    runs = {"previous engine": FastEngineV1(w, 5, 64), "today's engine": FastEngine(w, 5, 64)}
    for name, index in NUDGED:
        runs[f"previous, {name}{list(index)} +1 ulp"] = FastEngineV1(nudged(w, name, index), 5, 64)
    curves = {k: val_curve(e, train, val, args.epochs, args.lr) for k, e in runs.items()}
    base = np.array(curves.pop("previous engine"))
    print(f"lr {args.lr:g}, {args.samples} samples a block; |val MSE - previous engine's| "
          f"after epochs 1-{args.epochs} (previous engine's: "
          f"{', '.join(f'{v:.6f}' for v in base)})")  # fmt: skip
    for k, c in curves.items():
        diff = np.abs(np.array(c) - base)
        print(f"  {k:<45} " + "  ".join(f"{d:.1e}" for d in diff))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
