"""How often a clock sweep's sampler proposes a seed twice: TPE against the sweep's sampler.

    python -m bench.seed_proposals [--studies 8] [--trials 20]

Each simulated study searches the clock's seed range (``model.clock.method.SEEDS``), starts
with the enqueued seed 1 as the sweep does, and scores a seed by a fixed hash (half the seeds
"grow", like a coin per seed: the sampler has nothing to model). Prints, per sampler, how many
studies proposed some seed twice within the first ``--trials`` trials. No training runs.
"""

from __future__ import annotations

import argparse
import hashlib

import optuna

from model import registry
from model.clock.method import SEEDS
from sweep.space import sampler


def score(seed: int) -> float:
    grows = int(hashlib.md5(str(seed).encode()).hexdigest(), 16) % 2 == 0
    return 0.0015 if grows else 0.2


def repeats(make: object, trials: int) -> int:
    study = optuna.create_study(sampler=make)
    study.enqueue_trial({"seed": 1})
    study.optimize(lambda t: score(t.suggest_int("seed", *SEEDS)), n_trials=trials)
    seeds = [t.params["seed"] for t in study.trials]
    return len(seeds) - len(set(seeds))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--studies", type=int, default=8)
    p.add_argument("--trials", type=int, default=20)
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = {
        "TPE (before)": lambda s: optuna.samplers.TPESampler(seed=s),
        "the sweep's (now)": lambda s: sampler(registry.get("clock"), s),
    }
    for name, make in samplers.items():
        dup = [repeats(make(s), args.trials) for s in range(args.studies)]
        hit = sum(d > 0 for d in dup)
        print(f"{name:<18} {hit} of {args.studies} studies proposed a seed twice within "
              f"{args.trials} trials (repeats per study: {dup})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
