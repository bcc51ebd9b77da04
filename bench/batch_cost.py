"""Whether several grow attempts could share one forward and backward pass: the cost of one
LSTM update over a 1,000-step prefix as the batch (rows) or the hidden size grows, on one
thread, as a sweep's worker runs.

    OMP_NUM_THREADS=1 python -m bench.batch_cost

A grow update today is 4 rows (one realisation of each frequency block) of a 64-unit LSTM.
K attempts in one pass would be 4K rows of K different weight sets: at best (shared weights) the
cost of 4K rows, and with block-diagonal weights that of a K x 64-unit LSTM. If those cost
about as much as 4 rows of 64 units, batching would pay; if they cost K times as much, it
cannot. Median of 10 timed updates each."""

from __future__ import annotations

import time

import torch

CASES = ((4, 64), (8, 64), (16, 64), (32, 64), (4, 128), (4, 256), (16, 256))


def update_seconds(rows: int, hidden: int, steps: int = 1000, inputs: int = 5,
                   repeats: int = 10) -> float:  # fmt: skip
    lstm = torch.nn.LSTM(inputs, hidden, batch_first=True)
    head = torch.nn.Linear(hidden, 1)
    x = torch.randn(rows, steps, inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out, _ = lstm(x)
        head(out).pow(2).mean().backward()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    torch.set_num_threads(1)
    base = update_seconds(*CASES[0])
    print("rows hidden  ms/update  x today's")
    for rows, hidden in CASES:
        s = update_seconds(rows, hidden)
        print(f"{rows:4d} {hidden:6d} {1000 * s:10.1f} {s / base:10.2f}")


if __name__ == "__main__":
    main()
