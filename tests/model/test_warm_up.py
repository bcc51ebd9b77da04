"""A worker compiles before its first trial: the warm-up must compile exactly what a trial runs,
or the first epoch would still pay for compiling (and its recorded time include it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
rc = study.main(["--method", "clock", "--trials", "1", "--updates-per-epoch", "2", "--epochs",
                 "2", "--samples", "200", "--workers", "1", "--storage", "sqlite:///s.db",
                 "--quiet"])
print(rc, "numba" in sys.modules, "torch" in sys.modules)
"""


def test_a_clock_sweep_never_loads_numba(tmp_path: Path) -> None:
    # The clock evaluates in torch: numba and its compiled kernels would add ~120 MB to every
    # clock worker's peak (bench/results/memory.md), for an evaluation 11 ms a set faster.
    # Only a polish loads them (model.sequence); this tiny sweep never reaches one.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CLOCK_SCRIPT], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.stdout.splitlines()[-1:] == ["0 False True"], out.stdout + out.stderr


#: The polish's loops after their warm-up, then after a real loss+gradient evaluation of
#: several chunks (model.sequence), in a fresh process.
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
print("same")
"""


def test_the_polish_warm_up_compiles_what_a_polish_runs() -> None:
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
    assert len(asked) == 1  # no polish, nothing to compile
    assert warm.fill_kernel_cache(8, 5) is True  # the real child
    monkeypatch.setattr(warm.sys, "executable", "false")  # a child that fails
    assert warm.fill_kernel_cache(8, 5) is False
    monkeypatch.setattr(warm.sys, "executable", str(ROOT / "nowhere"))  # one that cannot start
    assert warm.fill_kernel_cache(8, 5) is False
