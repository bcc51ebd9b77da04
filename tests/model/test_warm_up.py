"""A worker compiles before its first trial: the warm-up must compile exactly what a trial runs,
or the first epoch would still pay for compiling (and its recorded time include it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: In a fresh process (a loaded or compiled kernel adds its signature to the dispatcher): the
#: kernels' signatures after the warm-up, then after one epoch of a real run and its delivery.
SCRIPT = """
from model import kernels
from model.data import TEST_SEED, TRAIN_SEED, VALIDATION_SEED, make_set
from model.l1 import fast
from sweep.settings import SweepConfig

def signatures():
    return {f.__name__: sorted(map(str, f.signatures))
            for f in (fast._train_epoch, kernels.predict_rows)}

config = SweepConfig(samples=50, epochs=1)
method = config.training_method
method.warm_up(config.settings, config.data)
warm = signatures()
train, val, test = (make_set(s, config.data) for s in (TRAIN_SEED, VALIDATION_SEED, TEST_SEED))
run = method.start(method.make_config({"lr": 1e-4}, config.settings), train, val, config.data)
run.run_epoch()
kernels.evaluate(run.state.weights, test)
assert all(warm.values()), warm
assert signatures() == warm, (warm, signatures())
print("same")
"""


def test_the_warm_up_compiles_what_a_trial_runs() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "same", out.stdout + out.stderr


#: A whole clock sweep in one process, from the command line to its answer.
CLOCK_SCRIPT = """
import sys
import study
from model.clock import method
method.GROW_ENGINE = sys.argv[1]
rc = study.main(["--method", "clock", "--trials", "1", "--updates-per-epoch", "2", "--epochs",
                 "2", "--samples", "200", "--workers", "1", "--storage", "sqlite:///s.db",
                 "--quiet"])
print(rc, "numba" in sys.modules, "torch" in sys.modules)
"""


@pytest.mark.parametrize("grow, loaded", [("compiled", True), ("torch", False)])
def test_a_clock_sweep_loads_numba_only_for_a_compiled_stage(tmp_path, grow, loaded) -> None:
    # The clock evaluates in torch: numba and its compiled kernels add ~120 MB to a clock
    # worker's peak (bench/results/memory.md), which its honest evaluation, 11 ms a set
    # faster compiled, does not pay for. Only a compiled stage loads them (model.sequence):
    # the sweep's grow stage, and the polish, which this tiny sweep never reaches.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CLOCK_SCRIPT, grow], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.stdout.splitlines()[-1:] == [f"0 {loaded} True"], out.stdout + out.stderr


#: The compiled loops after their warm-up, then after a real loss+gradient evaluation of
#: several chunks (model.sequence) and two epochs of a compiled grow stage, in a fresh process.
SEQUENCE_SCRIPT = """
import torch
from model import sequence, sequence_kernels as k
from model.lstm import build_model

def signatures():
    return {f.__name__: sorted(map(str, f.signatures)) for f in (k.steps, k.back)}

k.warm_up(8, 5)
warm = signatures()
sequence.CHUNK_STEPS = 4
model = build_model(5, 8, seed=1)
x, y, m = torch.randn(3, 10, 5), torch.randn(3, 10), torch.ones(3, 10)
sequence.error_sums(model, x, y, m).sum().backward()
assert all(warm.values()), warm
assert signatures() == warm, (warm, signatures())
# A compiled grow stage's epochs: Adam's updates, then an L-BFGS call on the prefix.
from model.clock.config import ClockConfig
from model.clock.training import ClockTraining
from model.data import DataConfig, make_set
data = DataConfig(samples=60)
cfg = ClockConfig(prefix_start=4, grow_updates=6, tune_updates=0, updates_per_epoch=3,
                  hidden_size=8, grow_engine="compiled", grow_lbfgs=1, growth_threshold=10.0)
run = ClockTraining.start(cfg, None, make_set(3, data), data)
run.run_epoch(), run.run_epoch()
assert signatures() == warm, (warm, signatures())
print("same")
"""


def test_the_warm_up_compiles_what_a_polish_and_a_grow_stage_run() -> None:
    out = subprocess.run([sys.executable, "-c", SEQUENCE_SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "same", out.stdout + out.stderr


def test_a_clock_worker_fills_the_cache_in_a_child_process(monkeypatch) -> None:
    from dataclasses import replace

    from model.clock import method, warm
    from sweep.settings import SweepConfig

    asked = []
    monkeypatch.setattr(method, "fill_kernel_cache", lambda *a: asked.append(a) or True)
    config = SweepConfig(method="clock")
    method.ClockMethod().warm_up(config.settings, config.data)
    assert asked == [(config.settings.hidden_size, config.data.input_size)]
    method.ClockMethod().warm_up(replace(config.settings, polish_evaluations=0), config.data)
    assert len(asked) == 2  # no polish: the grow stage's loops are the same
    monkeypatch.setattr(method, "GROW_ENGINE", "torch")
    method.ClockMethod().warm_up(replace(config.settings, polish_evaluations=0), config.data)
    assert len(asked) == 2  # nothing compiled, nothing to compile
    assert warm.fill_kernel_cache(8, 5) is True  # the real child
    monkeypatch.setattr(warm.sys, "executable", "false")  # a child that fails
    assert warm.fill_kernel_cache(8, 5) is False
    monkeypatch.setattr(warm.sys, "executable", str(ROOT / "nowhere"))  # one that cannot start
    assert warm.fill_kernel_cache(8, 5) is False
