"""Clock learning from scratch on one core: honest train/test MSE, ratio, tier and wall time.

    python -m bench.clock [--seed 3] [--grow-updates 2400] [--tune-updates 600] [...]

Without flags it runs ClockConfig's defaults (the recipe of bench/results/grow_screen.md) at
seed 1, the one seed of 21 whose grow stage reached full length on the Intel AVX-512 machine it
was measured on (grow 50 CPU s, then 300 tune updates: train = test = 0.0019, good tier). The
grow stage's outcome depends on the CPU's kernels (bench/results/clock_runs.md: oneDNN's
instruction set), so on another machine seed 1 may stall; the sweep searches seeds for that
reason.

``--threads N`` sets torch's intra-op threads (default 1). The last weights' sha256 prefix is
printed so two runs can be compared bit for bit.

Every ``ClockConfig`` field is a flag. ``--save-state PATH`` writes a checkpoint after each
epoch; ``--resume PATH`` continues one (with the flags' config, so a later stage can be re-run
with other settings); ``--save-model PATH`` writes the best weights by validation MSE.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import atomic_save
from model.clock.config import STAGE_TUNE, ClockConfig
from model.clock.state import adam_for, state_from_dict, state_to_dict
from model.clock.training import ClockTraining
from model.data import TEST_SEED, TRAIN_SEED, VALIDATION_SEED, DataConfig, make_set
from model.delivered import save_model
from model.lstm import module_from_weights
from sweep.rules.criteria import tier

FRESH_SEEDS = (11, 12, 777)
#: The seed of the best measured run of the defaults (bench/results/grow_screen.md).
BEST_SEED = 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(ClockConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            default = BEST_SEED if f.name == "seed" else f.default
            p.add_argument(flag, type=kind, default=default)
    p.add_argument("--save-state", type=Path)
    p.add_argument("--resume", type=Path)
    p.add_argument("--save-model", type=Path)
    p.add_argument(
        "--tune-now",
        action="store_true",
        help="with --resume: start the tune stage at once, from the state's best weights",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (torch.set_num_threads); default 1, the measured setting",
    )
    p.add_argument(
        "--fresh",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score the best weights on fresh noise seeds " + str(FRESH_SEEDS),
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = ClockConfig(**{f.name: getattr(args, f.name) for f in fields(ClockConfig)})
    data = DataConfig()
    train, val, test = make_set(TRAIN_SEED), make_set(VALIDATION_SEED), make_set(TEST_SEED)
    run = ClockTraining.start(cfg, train, val, data)
    if args.resume:
        state = state_from_dict(torch.load(args.resume, weights_only=True))
        state = replace(state, config=cfg, stop_reason=None)
        if args.tune_now:
            weights = state.best_weights or state.weights
            fresh = adam_for(module_from_weights(weights, data.input_size, cfg.hidden_size))
            state = replace(state, stage=STAGE_TUNE, prefix=data.samples, weights=weights,
                            optimizer=fresh.state_dict(), tune_start=state.updates)  # fmt: skip
        run = ClockTraining(train, val, state, data)
    print(cfg, flush=True)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    start, cpu0 = time.perf_counter(), time.process_time()
    for r in run.epochs():
        print(f"epoch {r.epoch:3d} {r.stage} T={r.prefix:5d} lr {r.lr:.1e} | online "
              f"{r.online_loss:.5f} | train {r.train_mse:.5f} val {r.val_mse:.5f} ("
              + " ".join(f"{v:.4f}" for v in r.val_per_freq)
              + f") | grad {r.grad_norm_mean:.3f}/{r.grad_norm_max:.3f} | {r.seconds:.1f} s"
              f" | {time.perf_counter() - start:.0f} s total"
              f" | cpu {time.process_time() - cpu0:.1f} s total", flush=True)  # fmt: skip
        if args.save_state:
            atomic_save(state_to_dict(run.state), args.save_state)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    best = run.state.best_weights
    tr, te, va = (run.evaluate(s, best) for s in (train, test, val))
    ratio = te.mse / tr.mse
    print(f"best by validation: train {tr.mse:.5f} test {te.mse:.5f} val {va.mse:.5f} "
          f"ratio {ratio:.3f} tier {tier(tr.mse, te.mse)} | wall {wall:.0f} s cpu {cpu:.0f} s "
          f"({run.state.updates} updates, stop {run.state.stop_reason})")  # fmt: skip
    digest = hashlib.sha256()
    for name in sorted(run.state.weights):
        digest.update(np.ascontiguousarray(run.state.weights[name], dtype=np.float32).tobytes())
    print(f"last weights sha256 {digest.hexdigest()[:16]} (bitwise identity across runs)")
    print("test per frequency " + " ".join(f"{v:.5f}" for v in te.per_freq))
    for stage in ("grow", "tune"):
        rs = [r for r in run.state.history if r.stage == stage]
        n, secs = sum(r.steps for r in rs), sum(r.seconds for r in rs)
        print(
            f"time in {stage}: {secs:.0f} s for {n} updates"
            + (f" ({secs / n:.3f} s per update, honest evaluations included)" if n else "")
        )
    if args.fresh:
        scores = [run.evaluate(make_set(s), best).mse for s in FRESH_SEEDS]
        pairs = zip(FRESH_SEEDS, scores, strict=True)
        print("fresh seeds " + " ".join(f"{s}: {m:.5f}" for s, m in pairs))
    if args.save_model:
        meta = {"method": "clock", "train_mse": tr.mse, "test_mse": te.mse, "val_mse": va.mse}
        save_model(best, cfg, meta, args.save_model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
