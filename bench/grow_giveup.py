"""Replay earlier give-up rules for grow-stage attempts over recorded grow screens and score
them by CPU per grown clock (bench/results/grow_giveup.md).

    python -m bench.grow_giveup --fit lb50-plateau-rescue300-grow4000 \\
        --check grow4000-heldout --files bench/results/grow_screen.jsonl

Each line of ``bench.grow_screen`` is one attempt of today's grow recipe: its per-epoch
trajectory (T at the epoch's end, online loss, per-frequency honest MSE, gradient norm,
cumulative CPU seconds) up to where it grew or the sweep's stall rule gave it up. A rule reads
the epochs so far and may give the attempt up at the end of any epoch before it has grown;
its CPU is then the cumulative CPU of that epoch. An attempt that ended first ends as
recorded. Successes are grown and partial attempts (what the sweep goes on to polish); a
success given up is lost. The score is total CPU over the successes kept: with attempts
drawn at random, what the grow stage costs per clock that reaches the polish.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

FULL_LENGTH = 10_000  # the block length: T there means grown
DEFAULT_FILE = Path("bench/results/grow_screen.jsonl")
GROWTH = 1.5  # today's prefix growth factor: one growth step multiplies T by it
# A sweep trial has 1 + 8 restarts: a rule that keeps fewer successes per attempt leaves more
# trials with no clock at all, which CPU per success does not show.
ATTEMPTS_PER_TRIAL = 9


@dataclass(frozen=True)
class Attempt:
    """What a rule may read of one recorded grow stage, epoch by epoch."""

    seed: int
    success: bool
    start: int
    """prefix_start: the initial plateau's T, which every attempt leaves at its own pace."""
    prefix: tuple[int, ...]
    worst: tuple[float, ...]
    """Largest per-frequency honest validation MSE at each epoch's end."""
    cpu: tuple[float, ...]
    """Cumulative CPU seconds at each epoch's end."""


@dataclass(frozen=True)
class Rule:
    name: str
    fires: Callable[[Attempt, int], bool]
    """Whether to give the attempt up after its first n epochs (n >= 1)."""


@dataclass(frozen=True)
class Score:
    rule: str
    attempts: int
    kept: int
    lost: tuple[int, ...]
    """Seeds of the successes given up."""
    fail_cpu: float
    """CPU of the attempts that end without a clock (successes given up included)."""
    kept_cpu: float

    @property
    def cpu(self) -> float:
        return self.fail_cpu + self.kept_cpu

    @property
    def per_kept(self) -> float:
        return self.cpu / self.kept if self.kept else math.inf

    @property
    def no_clock(self) -> float:
        """Chance that a trial's every attempt fails, at this share of successes."""
        return (1 - self.kept / self.attempts) ** ATTEMPTS_PER_TRIAL


def load(files: Sequence[Path], label: str) -> list[Attempt]:
    out = {}
    for path in files:
        for line in path.read_text().splitlines():
            r = json.loads(line) if line.strip() else {}
            if r.get("label") == label:
                t = r["trajectory"]
                out[r["seed"]] = Attempt(
                    r["seed"], r["outcome"] != "stalled", r["config"]["prefix_start"],
                    tuple(e[0] for e in t), tuple(max(e[2]) for e in t), tuple(e[4] for e in t),
                )  # fmt: skip
    return [out[s] for s in sorted(out)]


def never() -> Rule:
    return Rule("today: the stall rule only", lambda a, n: False)


def prefix_below(epoch: int, bar: int) -> Rule:
    """T still under ``bar`` at the end of ``epoch``."""
    return Rule(f"T < {bar} at epoch {epoch}", lambda a, n: n == epoch and a.prefix[n - 1] < bar)


def growths(a: Attempt, n: int, k: int) -> int:
    """Growth steps of T over the k epochs up to n (a rescue or L-BFGS call may make two)."""
    return math.floor(math.log(a.prefix[n - 1] / a.prefix[n - 1 - k], GROWTH) + 1e-9)


def slow(k: int, steps: int) -> Rule:
    """Fewer than ``steps`` growths over the last k epochs, all above the initial plateau
    (which grown attempts left after up to 14 epochs; ``prefix_below`` covers it)."""
    name = f"no growth in {k} epochs" if steps == 1 else f"< {steps} growths in {k} epochs"
    return Rule(
        name,
        lambda a, n: n > k and a.prefix[n - 1 - k] > a.start and growths(a, n, k) < steps,
    )


def worst_above(epoch: int, bar: float) -> Rule:
    """Some block's honest MSE still at or above ``bar`` at the end of ``epoch``."""
    return Rule(f"worst block >= {bar} at epoch {epoch}",
                lambda a, n: n == epoch and a.worst[n - 1] >= bar)  # fmt: skip


def either(x: Rule, y: Rule) -> Rule:
    return Rule(f"{x.name} or {y.name}", lambda a, n: x.fires(a, n) or y.fires(a, n))


def given_up_at(rule: Rule, a: Attempt) -> int | None:
    """The first epoch after which ``rule`` gives ``a`` up, if before it grew or ended."""
    for n in range(1, len(a.prefix) + 1):
        if a.prefix[n - 1] < FULL_LENGTH and rule.fires(a, n):
            return n
    return None


def replay(rule: Rule, attempts: Sequence[Attempt]) -> Score:
    kept, lost, fail_cpu, kept_cpu = 0, [], 0.0, 0.0
    for a in attempts:
        n = given_up_at(rule, a)
        if a.success and n is None:
            kept, kept_cpu = kept + 1, kept_cpu + a.cpu[-1]
        else:
            fail_cpu += a.cpu[-1] if n is None else a.cpu[n - 1]
            lost += [a.seed] if a.success else []
    return Score(rule.name, len(attempts), kept, tuple(lost), fail_cpu, kept_cpu)


def per_clock_change(rule: Score, base: Score) -> tuple[float, float]:
    """CPU per clock of the failures and of the successes kept under ``rule``, against today."""
    if not rule.kept:
        return math.inf, math.inf
    fail = (rule.fail_cpu / rule.kept) / (base.fail_cpu / base.kept)
    return fail, (rule.kept_cpu / rule.kept) / (base.kept_cpu / base.kept)


def projected(rule: Score, base: Score, given_up: float, went_on: float) -> float:
    """A sweep's grow seconds (given up, went on) for as many clocks under ``rule``: each part
    scaled by its own change per clock, so that a set with fewer successes than the sweep
    does not weigh its failures' saving more than the sweep would."""
    fail, kept = per_clock_change(rule, base)
    return given_up * fail + went_on * kept


# The family, declared before the held-out seeds were looked at (grow_giveup.md): epochs are
# the sweep's (40 grow epochs), bars are the T levels a growth from 100 passes through.
EPOCHS = (10, 15, 20, 25, 30, 35)
BARS = (150, 225, 338, 507, 761, 1142, 1713, 2570, 3855)


def families() -> dict[str, list[Rule]]:
    return {
        "prefix": [prefix_below(e, b) for e in EPOCHS for b in BARS],
        "slow": [slow(k, 1) for k in range(3, 14)]
        + [slow(k, s) for s in (2, 3) for k in (5, 8, 10, 12)],
        "worst": [worst_above(e, x) for e in EPOCHS[2:] for x in (0.3, 0.5, 0.8, 1.0)],
    }


def ranked(rules: Sequence[Rule], attempts: Sequence[Attempt]) -> list[Score]:
    """By CPU per kept success, then fewer lost, then declaration order."""
    scores = [replay(r, attempts) for r in rules]
    return sorted(scores, key=lambda s: (s.per_kept, len(s.lost)))


def fit(attempts: Sequence[Attempt]) -> tuple[list[Score], dict[str, Rule]]:
    """Every rule of the family and the pairs of each family's top 3 (prefix with slow), ranked."""
    fams = families()
    best = {f: [s.rule for s in ranked(rs, attempts)[:3]] for f, rs in fams.items()}
    by_name = {r.name: r for rs in fams.values() for r in rs}
    pairs = [either(by_name[p], by_name[q]) for p in best["prefix"] for q in best["slow"]]
    by_name |= {r.name: r for r in pairs}
    return ranked([never(), *by_name.values()], attempts), by_name


def choose(scores: Sequence[Score], most_lost: int | None) -> str:
    """The best-ranked rule (not today's) that loses at most ``most_lost`` successes."""
    today = never().name
    ok = [s for s in scores if s.rule != today and (most_lost is None or len(s.lost) <= most_lost)]
    return ok[0].rule if ok else today


def table(scores: Sequence[Score], base: Score) -> list[str]:
    out = ["| rule | successes kept | lost (seeds) | CPU s | CPU s per success | vs today | "
           "trial with no clock |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in scores:
        lost = f"{len(s.lost)} ({', '.join(map(str, s.lost))})" if s.lost else "0"
        out.append(f"| {s.rule} | {s.kept} of {s.attempts} | {lost} | {s.cpu:.1f} | "
                   f"{s.per_kept:.1f} | {s.per_kept / base.per_kept:.3f} | "
                   f"{s.no_clock:.1%} |")  # fmt: skip
    return out


def sweep_table(rules: Sequence[Rule], sets: dict[str, list[Attempt]],
                sweeps: Sequence[tuple[float, float, float]]) -> list[str]:  # fmt: skip
    """Each sweep's seconds in epochs (grow given up + went on + polish) under each rule, with
    the rule's change per clock measured on each set: the whole ratio applied to the grow
    seconds, and part by part (``projected``)."""
    head = " | ".join(f"sweep {g:.0f}+{w:.0f}+{p:.0f}: whole / by part" for g, w, p in sweeps)
    out = [f"| rule | measured on | failures / successes per clock, vs today | {head} |",
           "|---|---|---|" + "---|" * len(sweeps)]  # fmt: skip
    for rule in rules:
        for name, attempts in sets.items():
            r, b = replay(rule, attempts), replay(never(), attempts)
            fail, kept = per_clock_change(r, b)
            cells = [f"{(g + w) * r.per_kept / b.per_kept + p:.0f} / "
                     f"{projected(r, b, g, w) + p:.0f}" for g, w, p in sweeps]  # fmt: skip
            out.append(f"| {rule.name} | {name} | {fail:.3f} / {kept:.3f} | "
                       + " | ".join(cells) + " |")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fit", required=True, help="label whose attempts choose the rule")
    p.add_argument("--check", help="label of held-out attempts to score the chosen rules on")
    p.add_argument("--files", nargs="+", type=Path, default=[DEFAULT_FILE])
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--sweep", action="append", default=[], metavar="GIVEN_UP,WENT_ON,POLISH",
                   help="a sweep's seconds in epochs, projected under the chosen")  # fmt: skip
    args = p.parse_args(argv)
    sets = {args.fit: load(args.files, args.fit)}
    if args.check:
        sets[args.check] = load(args.files, args.check)
    for label, attempts in sets.items():
        if not attempts:
            p.error(f"no lines with label {label!r}")
    train = sets[args.fit]
    scores, rules = fit(train)
    base = replay(never(), train)
    chosen = list(dict.fromkeys(choose(scores, most) for most in (None, 1, 0)))
    print(f"## Fit: {args.fit}, {len(train)} attempts, {len(scores)} rules\n")
    print("\n".join(table([base, *scores[: args.top]], base)))
    for fam, rs in families().items():
        print(f"\nBest of family {fam}:\n")
        print("\n".join(table(ranked(rs, train)[:3], base)))
    print("\nBest with no success lost:\n")
    print("\n".join(table([s for s in scores if not s.lost][:5], base)))
    print("\nChosen (best; best losing at most 1; best losing none): " + "; ".join(chosen))
    picked = [rules.get(n, never()) for n in chosen]
    if args.check:
        test = sets[args.check]
        top = [rules.get(s.rule, never()) for s in scores[:5] if s.rule not in chosen]
        held = replay(never(), test)
        print(f"\n## Held out: {args.check}, {len(test)} attempts (chosen first, then the "
              f"rest of the fit's top 5)\n")  # fmt: skip
        print("\n".join(table([held, *(replay(r, test) for r in picked + top)], held)))
    if args.sweep:
        sweeps = [tuple(float(x) for x in s.split(",")) for s in args.sweep]
        print("\n## Sweeps projected (seconds in epochs)\n")
        print("\n".join(sweep_table(picked, sets, sweeps)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
