"""One clock loss+gradient evaluation in each engine (``ClockConfig.polish_engine``), side by
side in one process, turn about: torch (``nn.LSTM`` + autograd, chunked) against the compiled
``model.sequence``, on the polish's own problem (4 blocks, S = 0, the true targets) at several
prefix lengths, from the weights of seed 1's initialisation.

    python -m bench.sequence_speed --rounds 9

Prints, per length, the median CPU milliseconds of each engine and their ratio, and the
largest relative difference between the two engines' loss and gradient.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench import provenance
from model.clock.batch import error_sums
from model.clock.memory import keep_freed_memory
from model.clock.polish import full_length_batch
from model.data import DataConfig
from model.lstm import build_model

LENGTHS = (100, 300, 1000, 2570, 5783, 10000)


def _evaluate(model: torch.nn.Module, batch: tuple[torch.Tensor, ...], compiled: bool
              ) -> tuple[float, float, list[torch.Tensor]]:  # fmt: skip
    """CPU seconds of one loss+gradient, the loss and the gradient."""
    x, y, mask = batch
    model.zero_grad()
    start = time.process_time()
    loss = error_sums(model, x, y, mask, compiled).sum() / y.numel()
    loss.backward()
    cpu = time.process_time() - start
    return cpu, float(loss.detach()), [p.grad.clone() for p in model.parameters()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a sweep's worker trains
    keep_freed_memory()  # as the clock trainer does
    model = build_model(5, 64, seed=1)
    x, y = full_length_batch(DataConfig())
    print(f"{provenance.commit()} on {provenance.machine()}, {args.rounds} rounds, CPU ms")
    print("| T | torch | compiled | ratio | loss rel. diff | gradient rel. diff |")
    print("|---|---|---|---|---|---|")
    for length in LENGTHS:
        batch = (x[:, :length], y[:, :length], torch.ones(4, length))
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for compiled in (False, True):
                cpu, loss, grads = _evaluate(model, batch, compiled)
                times[compiled].append(cpu)
                if compiled:
                    c_loss, c_grads = loss, grads
                else:
                    t_loss, t_grads = loss, grads
        pairs = zip(c_grads, t_grads, strict=True)
        grad_diff = max(float((c - t).norm() / t.norm()) for c, t in pairs)
        torch_ms, ms = (1000 * statistics.median(times[k]) for k in (False, True))
        print(f"| {length:,} | {torch_ms:.1f} | {ms:.1f} | {torch_ms / ms:.2f}x | "
              f"{abs(c_loss - t_loss) / t_loss:.1e} | {grad_diff:.1e} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
