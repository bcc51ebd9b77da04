"""How to finish a grown clock: Adam (the tune stage) against L-BFGS (the polish stage), from
the same grown weights, with a fixed budget of loss+gradient evaluations.

    python -m bench.polish grow --db studies.db --out /tmp/grown      # the clocks (once)
    python -m bench.polish compare --clocks /tmp/grown --evals 600 --jobs 2 \\
        --out bench/results/polish.jsonl
    python -m bench.polish summary                                     # the table

``grow`` reads a finished clock study (``python study.py --method clock``): for every trial
that reached its full-length stage it runs the sweep's config of that trial's seed again from
the attempt that grew (with S ignored the noise does not change the run, so starting at that
attempt gives the sweep's weights), up to the end of its grow stage, and saves that state: the
weights today's tune stage starts from.

``compare`` runs every variant from every grown clock, one process per run (``--jobs`` at
once, one thread each), and appends one JSON line per run: the clock, the variant, the honest
validation MSE and process CPU seconds after every epoch (100 evaluations), the stop reason.
Variants (an Adam update and an L-BFGS evaluation are one full-length forward and backward
pass each):
- ``adam``: today's tune stage with its warm-up and cosine, over the whole budget;
- ``tune300``: today's tune stage exactly (300 updates), then nothing;
- ``lbfgs``: the polish stage over the whole budget (history carried between epochs);
- ``adam100+lbfgs``: 100 tune updates, then the polish;
- ``tune300+lbfgs``: today's tune stage, then the polish (its first 300 evaluations are
  ``tune300``);
- ``lbfgs-fresh``: the polish with its history dropped after every epoch;
- ``lbfgs-torch``: the polish computed by torch (``ClockConfig.polish_engine``; every
  L-BFGS variant above runs in the sweep's default engine, compiled since 2026-12-03).
(Float64 was not run here: ../shared/notes/clock-polish.md measured it once.)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path

import optuna
import torch

from bench import provenance
from model import registry
from model.clock import state as clock_state
from model.clock.config import ClockConfig
from model.clock.training import ClockTraining
from model.data import VALIDATION_SEED, DataConfig, make_set
from model.lstm import weights_of
from sweep import records as rec
from sweep.settings import SweepConfig

VARIANTS = ("adam", "tune300", "lbfgs", "adam100+lbfgs", "tune300+lbfgs", "lbfgs-fresh",
            "lbfgs-torch")  # fmt: skip


def grown_attempts(db: Path, study_name: str) -> list[tuple[int, int, int]]:
    """(trial number, seed, attempt) of every trial whose run reached its full-length stage."""
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{db}")
    found = []
    for t in study.get_trials(deepcopy=False):
        curves = rec.curves(t)
        stages, attempts = curves.get("stage") or [], curves.get("attempt") or []
        tuned = [i for i, s in enumerate(stages) if s != "grow"]
        if tuned and "seed" in t.params:
            found.append((t.number, int(t.params["seed"]), int(attempts[tuned[0]])))
    return found


def sweep_config(seed: int) -> ClockConfig:
    """The default clock sweep's config of one seed (polish off: the grow stage is what is
    wanted here)."""
    sweep = SweepConfig(method="clock")
    cfg = registry.get("clock").make_config({"seed": seed}, sweep.settings)
    return replace(cfg, polish_evaluations=0)


def grow(db: Path | None, study_name: str, out: Path, seeds: list[int]) -> None:
    torch.set_num_threads(1)  # as a sweep's worker trains: the same numbers
    out.mkdir(parents=True, exist_ok=True)
    data, val = DataConfig(), make_set(VALIDATION_SEED)
    for seed in seeds:  # attempts unknown: the sweep's trial, restarts and all, grow stage only
        if list(out.glob(f"seed{seed}-*.pt")):
            continue
        cfg = replace(sweep_config(seed), tune_updates=0)
        run, cpu = ClockTraining.start(cfg, None, val, data), time.process_time()
        for _ in run.epochs():
            pass
        report = run.state.history[-1]
        grown = max(run.state.history[run.state.best_epoch - 1].val_per_freq) < 0.2
        if grown:
            clock_state.save(run.state, out / f"seed{seed}-attempt{run.state.attempt}.pt")
        print(f"seed {seed}: attempt {run.state.attempt} {'grew' if grown else 'stalled'}, "
              f"prefix {report.prefix}, val {run.state.best_val:.5f}, "
              f"{time.process_time() - cpu:.0f} CPU-s", flush=True)  # fmt: skip
    for number, seed, attempt in grown_attempts(db, study_name) if db else ():
        path = out / f"seed{seed}-attempt{attempt}.pt"
        if path.exists():
            continue
        cfg = replace(sweep_config(seed), tune_updates=0, max_restarts=attempt)
        start = clock_state.initial_state(cfg, data)
        first = clock_state.initial_model(cfg, data, attempt)
        run = ClockTraining(None, val, replace(start, weights=weights_of(first), attempt=attempt),
                            data)  # fmt: skip
        cpu = time.process_time()
        for _ in run.epochs():
            pass
        report = run.state.history[-1]
        clock_state.save(run.state, path)
        print(
            f"trial {number} seed {seed} attempt {attempt}: prefix {report.prefix}, val "
            f"{run.state.best_val:.5f}, {time.process_time() - cpu:.0f} CPU-s",
            flush=True,
        )


def variant_config(variant: str, seed: int, evals: int) -> ClockConfig:
    tune = {"adam": evals, "tune300": 300, "adam100+lbfgs": 100, "tune300+lbfgs": 300}
    t = tune.get(variant, 0)
    polish = 0 if variant in ("adam", "tune300") else evals - t
    # The whole budget for every variant: no polish target, give-up or leader (the sweep's
    # defaults since this bench was first run stop a polish at 200 evaluations once excellent,
    # or above 0.002 there).
    engine = "torch" if variant == "lbfgs-torch" else sweep_config(seed).polish_engine
    return replace(sweep_config(seed), grow_updates=0, tune_updates=t, polish_engine=engine,
                   tune_warmup=min(50, t // 2), polish_evaluations=polish, polish_target=0.0,
                   polish_goal_after=0, polish_give_up=0.0, polish_leader_evaluations=0,
                   polish_leader_target=0.0)  # fmt: skip


def run_one(job: tuple[str, str, int]) -> dict:
    path, variant, evals = job
    torch.set_num_threads(1)
    grown = clock_state.load(Path(path))
    data, val = DataConfig(), make_set(VALIDATION_SEED)
    cfg = variant_config(variant, grown.config.seed, evals)
    start = clock_state.initial_state(cfg, data)
    weights = grown.best_weights or grown.weights
    run = ClockTraining(None, val, replace(start, weights=weights), data)
    cpu, curve, seconds, stop = time.process_time(), [], [], None
    first = run.evaluate(val, weights).mse
    while not run.finished:
        report = run.run_epoch()
        curve.append(report.val_mse)
        seconds.append(round(time.process_time() - cpu, 2))
        stop = report.stop_reason
        if variant == "lbfgs-fresh":
            run.optimizer.state.clear()
            run.state = replace(run.state, optimizer=run.optimizer.state_dict())
    return {"clock": Path(path).stem, "variant": variant, "evals": evals, "start_val": first,
            "val_mse": curve, "cpu_s": seconds, "stop": stop}  # fmt: skip


def compare(clocks: Path, variants: list[str], evals: int, jobs: int, out: Path,
            match: str = "*") -> None:  # fmt: skip
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["clock"], r["variant"], r["evals"]))
    todo = [(str(p), v, evals) for p in sorted(clocks.glob(f"{match}.pt")) for v in variants
            if (p.stem, v, evals) not in done]  # fmt: skip
    commit, machine = provenance.commit(), provenance.machine()
    out.parent.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for r in pool.imap_unordered(run_one, todo):
            r.update(commit=commit, machine=machine, jobs=jobs)
            with out.open("a") as f:
                f.write(json.dumps(r) + "\n")
            print(f"{r['clock']:>22} {r['variant']:>14}: {r['start_val']:.5f} -> "
                  f"{r['val_mse'][-1]:.6f} in {r['cpu_s'][-1]:.0f} CPU-s ({r['stop']})",
                  flush=True)  # fmt: skip


def summary(out: Path, marks: tuple[int, ...] = (100, 200, 300, 600)) -> str:
    """A markdown table of ``out``: per clock and variant, the honest validation MSE after
    each of ``marks`` evaluations (epochs of 100), the CPU seconds and how it stopped."""
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    head = " | ".join(f"after {m}" for m in marks)
    lines = [f"| clock | start | variant | {head} | CPU s | stop |",
             "|---" * (len(marks) + 5) + "|"]  # fmt: skip
    for r in sorted(rows, key=lambda r: (r["clock"], r["variant"])):
        vals = r["val_mse"]
        cells = [f"{vals[m // 100 - 1]:.6f}" if m // 100 <= len(vals) else "-" for m in marks]
        lines.append(f"| {r['clock']} | {r['start_val']:.5f} | {r['variant']} | "
                     + " | ".join(cells) + f" | {r['cpu_s'][-1]:.0f} | {r['stop']} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grow")
    g.add_argument("--db", type=Path)
    g.add_argument("--seeds", default="", help="seeds to grow with the sweep's restarts")
    g.add_argument("--study-name", default="lstm-clock")
    g.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("--clocks", type=Path, required=True)
    c.add_argument("--variants", default="lbfgs,tune300+lbfgs,adam100+lbfgs")
    c.add_argument("--evals", type=int, default=600)
    c.add_argument("--jobs", type=int, default=2)
    c.add_argument("--match", default="*", help="glob of the clocks' names (no .pt)")
    c.add_argument("--out", type=Path, default=Path("bench/results/polish.jsonl"))
    m = sub.add_parser("summary")
    m.add_argument("--out", type=Path, default=Path("bench/results/polish.jsonl"))
    a = p.parse_args()
    if a.cmd == "summary":
        print(summary(a.out))
    elif a.cmd == "grow":
        grow(a.db, a.study_name, a.out, [int(x) for x in a.seeds.split(",") if x])
    else:
        compare(a.clocks, a.variants.split(","), a.evals, a.jobs, a.out, a.match)


if __name__ == "__main__":
    main()
