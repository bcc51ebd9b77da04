"""One full-size trial of the plan (lr 1e-4 by default), epoch by epoch, with honest numbers.

python -m bench.one_trial [--epochs 3] [--lr 1e-4] [--engine fast|reference]
"""

from __future__ import annotations

import argparse
import time

import torch

from model.data import TEST_SEED, TRAIN_SEED, VALIDATION_SEED, make_set
from model.l1.config import TrainConfig
from model.l1.training import Training


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--engine", default="fast")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    train, val, test = make_set(TRAIN_SEED), make_set(VALIDATION_SEED), make_set(TEST_SEED)
    cfg = TrainConfig(lr=args.lr, epochs=args.epochs, engine=args.engine)
    t = Training.start(cfg, train, val)
    if args.engine == "fast":  # keep the one-off compile (or cache load) out of epoch 1
        from model.data import DataConfig

        tiny = make_set(0, DataConfig(samples=4))
        Training.start(cfg, tiny, tiny).run_epoch()
    print(f"engine {args.engine}, lr {args.lr}, full-size sets (4 x 10,000 rows)")
    start = time.perf_counter()
    for r in t.epochs():
        print(
            f"epoch {r.epoch}: online loss {r.online_loss:.4f} | honest train MSE "
            f"{r.train_mse:.4f} val MSE {r.val_mse:.4f} | grad norm mean {r.grad_norm_mean:.3f} "
            f"max {r.grad_norm_max:.3f} | lr {r.lr:.1e} | {r.seconds:.2f} s",
            flush=True,
        )
    last = t.evaluate(test)
    print(f"final weights: honest test MSE {last.mse:.4f} per frequency "
          + " ".join(f"{v:.4f}" for v in last.per_freq))  # fmt: skip
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
