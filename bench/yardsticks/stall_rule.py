"""A candidate stall rule for the clock method's grow stage, derived from recorded trajectories.
Superseded by the rule the sweep uses (``sweep.rules.stall.check_stalled``); kept as the
family
its thresholds were searched in (``bench.grow_stall_search``) and for the recordings' outcomes
(``outcome``, used by ``bench.stall_replay`` and ``bench.grow_avx2_compare``).

Pure functions, no imports from the project. ``stalled`` is called after each grow epoch with
the history so far (one value per finished epoch, oldest first) and returns a one-line reason
when the grow stage has stalled, else None. The thresholds were chosen on
``bench/results/grow_trajectories.jsonl`` (see ``bench/results/grow_stall.md``) as the
earliest-firing setting of this form that stops no recorded run that grew (or nearly grew).

    python -m bench.yardsticks.stall_rule [bench/results/grow_trajectories.jsonl]

replays the rule over the recorded seeds and prints, per seed, its outcome and the epoch and
cumulative CPU seconds at which the rule fires (or its margin on a success).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

#: Initial prefix (ClockConfig.prefix_start): every seed starts on a plateau there (online loss
#: ~0.447, gradient ~0.005), leaves it at epoch 2-19, and the rule does not judge it.
PREFIX_START = 100
#: Rule 1, saturated: T unchanged (above PREFIX_START) for PATIENCE epochs ...
PATIENCE = 3
#: ... with the epoch's mean gradient norm under this in each of them (stalls sit at
#: 0.003-0.05; the one recorded success never went under 1.1 after leaving T = 100) ...
SATURATED_GRAD_NORM = 0.1
#: ... while the prefix is not learnt: online loss above this in each of them (T grows when
#: its EMA is under ClockConfig.growth_threshold = 0.01).
UNLEARNT_LOSS = 0.012
#: Rule 2, end of the grow stage (ClockConfig.grow_updates / updates_per_epoch): a clock that
#: has neither grown to FULL_LENGTH nor reached PARTIAL_MIN_PREFIX with every block under
#: PARTIAL_MAX_BLOCK cannot be finished at full length (clock-reliability.md).
GROW_EPOCHS = 24
FULL_LENGTH = 10_000
PARTIAL_MIN_PREFIX = 3_000
PARTIAL_MAX_BLOCK = 0.2


def stalled(
    prefixes: Sequence[int],
    worst_block_val: Sequence[float],
    online_loss: Sequence[float] | None = None,
    grad_norm: Sequence[float] | None = None,
    *,
    patience: int = PATIENCE,
    saturated_grad_norm: float = SATURATED_GRAD_NORM,
    unlearnt_loss: float = UNLEARNT_LOSS,
    prefix_start: int = PREFIX_START,
    grow_epochs: int = GROW_EPOCHS,
    full_length: int = FULL_LENGTH,
    partial_min_prefix: int = PARTIAL_MIN_PREFIX,
    partial_max_block: float = PARTIAL_MAX_BLOCK,
) -> str | None:
    """Stalled after ``len(prefixes)`` grow epochs? Element i of each sequence describes epoch
    i + 1: ``prefixes`` the prefix T at its end, ``worst_block_val`` the largest per-frequency
    validation MSE at its end, ``online_loss`` and ``grad_norm`` the means over its updates.
    Without ``online_loss`` and ``grad_norm`` only rule 2 applies."""
    n = len(prefixes)
    if n == 0 or n != len(worst_block_val):
        raise ValueError(f"{n} prefixes but {len(worst_block_val)} validation values")
    t = prefixes[-1]
    if t >= full_length:
        return None
    if online_loss is not None and grad_norm is not None and n > patience and t > prefix_start:
        g, loss = grad_norm[-patience:], online_loss[-patience:]
        if (t == prefixes[-1 - patience] and max(g) < saturated_grad_norm
                and min(loss) > unlearnt_loss):  # fmt: skip
            return (f"saturated: T = {t} unchanged for {patience} epochs, gradient norm under "
                    f"{saturated_grad_norm} (max {max(g):.4f}) and online loss above "
                    f"{unlearnt_loss} (min {min(loss):.4f}) in each, at epoch {n}")  # fmt: skip
    if n >= grow_epochs:
        w = worst_block_val[-1]
        if not (t >= partial_min_prefix and w < partial_max_block):
            return (f"grow stage over at epoch {n}: T = {t} < {full_length} and not partly "
                    f"grown (needs T >= {partial_min_prefix} with every block under "
                    f"{partial_max_block}; worst block {w:.3f})")  # fmt: skip
    return None


def worst_blocks(epochs: Sequence[dict]) -> list[float]:
    return [max(e["val_per_freq"]) for e in epochs]


def outcome(epochs: Sequence[dict]) -> str:
    """'grown': T reached the full length; 'partial': T >= 3,000 and every block under 0.2 at
    the last epoch (such a clock can be finished at full length); else 'stalled'."""
    if any(e["prefix"] >= FULL_LENGTH for e in epochs):
        return "grown"
    last = epochs[-1]
    if last["prefix"] >= PARTIAL_MIN_PREFIX and max(last["val_per_freq"]) < PARTIAL_MAX_BLOCK:
        return "partial"
    return "stalled"


def first_firing(epochs: Sequence[dict], **thresholds) -> tuple[int, str] | None:
    """(epoch, reason) of the first epoch at which ``stalled`` fires, replayed online."""
    t = [e["prefix"] for e in epochs]
    w = worst_blocks(epochs)
    loss = [e["online_loss"] for e in epochs]
    g = [e["grad_norm_mean"] for e in epochs]
    for n in range(1, len(epochs) + 1):
        reason = stalled(t[:n], w[:n], loss[:n], g[:n], **thresholds)
        if reason:
            return n, reason
    return None


def margin(epochs: Sequence[dict], *, patience: int = PATIENCE,
           prefix_start: int = PREFIX_START) -> str:  # fmt: skip
    """How close rule 1 came to firing on a run it does not stop: over every window of
    ``patience`` epochs with T unchanged above ``prefix_start``, the smallest window maximum of
    the gradient norm (rule 1 needs it under SATURATED_GRAD_NORM) and that window's smallest
    online loss; plus the longest run of epochs with T unchanged above ``prefix_start``."""
    t = [e["prefix"] for e in epochs]
    g = [e["grad_norm_mean"] for e in epochs]
    loss = [e["online_loss"] for e in epochs]
    windows = [
        (max(g[n - patience : n]), min(loss[n - patience : n]), n)
        for n in range(patience + 1, len(t) + 1)
        if t[n - 1] == t[n - 1 - patience] and prefix_start < t[n - 1] < FULL_LENGTH
    ]
    longest = run = 0
    for i in range(1, len(t)):
        run = run + 1 if t[i] == t[i - 1] and t[i] > prefix_start else 0
        longest = max(longest, run)
    if not windows:
        return f"T never unchanged {patience} epochs above {prefix_start}"
    gmax, lmin, n = min(windows)
    return (
        f"closest window: grad {gmax:.3f} (x{gmax / SATURATED_GRAD_NORM:.0f} the threshold), "
        f"online {lmin:.4f}, epoch {n}; longest flat run {longest} epochs"
    )


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "bench/results/grow_trajectories.jsonl")
    records = sorted(load(path), key=lambda r: r["seed"])
    print(
        f"rule 1 (saturated): T > {PREFIX_START} unchanged for {PATIENCE} epochs, each with "
        f"mean grad norm < {SATURATED_GRAD_NORM} and online loss > {UNLEARNT_LOSS}"
    )
    print(
        f"rule 2 (grow over): at epoch {GROW_EPOCHS}, T < {FULL_LENGTH} and not (T >= "
        f"{PARTIAL_MIN_PREFIX} and worst block < {PARTIAL_MAX_BLOCK})"
    )
    print("seed outcome  T_end  fires@epoch rule cpu_s@fire cpu_s_total  note")
    pruned = fired = 0
    cpu_fire = cpu_all = 0.0
    for r in records:
        ep = r["epochs"]
        kind = outcome(ep)
        hit = first_firing(ep)
        total = ep[-1]["cpu_seconds"]
        if kind == "stalled":
            cpu_all += total
        if hit:
            n, reason = hit
            cpu = ep[n - 1]["cpu_seconds"]
            which = "1" if reason.startswith("saturated") else "2"
            note = "PRUNED A SUCCESS" if kind != "stalled" else ""
            pruned += kind != "stalled"
            fired += kind == "stalled"
            cpu_fire += cpu if kind == "stalled" else 0.0
            print(
                f"{r['seed']:4d} {kind:8s} {ep[-1]['prefix']:6d} {n:11d} {which:>4s} "
                f"{cpu:10.1f} {total:11.1f}  {note}"
            )
        else:
            note = margin(ep) if kind != "stalled" else "MISSED (not stopped)"
            cpu_all += 0.0
            print(
                f"{r['seed']:4d} {kind:8s} {ep[-1]['prefix']:6d} {'-':>11s} {'-':>4s} "
                f"{'-':>10s} {total:11.1f}  {note}"
            )
    print(
        f"stalls stopped: {fired}; CPU s until stopped {cpu_fire:.0f} of {cpu_all:.0f} for "
        f"their whole grow stages; successes pruned: {pruned}"
    )
    return 1 if pruned else 0


if __name__ == "__main__":
    raise SystemExit(main())
