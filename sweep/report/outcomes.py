"""How a study's finished trials ended, for a sweep that spends compute on many tries: tiers
reached, trials stopped early and when, success per setting over the seeds, and the initial
weights a trial tried before one grew (issue 11)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from model import registry
from sweep import records as rec
from sweep.report.summary import FINISHED_NAMES, TrialRow
from sweep.rules.criteria import TIERS

#: The tiers from loosest to strictest: a trial that reached one reached those before it.
_TIER_ORDER = tuple(t.name for t in reversed(TIERS))


class Outcomes(NamedTuple):
    """How a study's finished trials ended: what a sweep that spends compute on many tries
    must show (issue 11)."""

    finished: int
    reached: dict[str, int]
    """Per tier, loosest first: how many trials reached at least that tier."""
    stopped: dict[str, tuple[int, ...]]
    """Per verdict that stopped trials early: the epochs at which it did."""
    by_config: dict[str, tuple[int, int]]
    """For a method whose space is unordered (a seed): per setting of everything but its
    sweep axis, (trials that reached the minimum tier, trials), over the axis values tried."""
    attempts: tuple[int, int, int] | None = None
    """For a method that starts stalled runs over: (initial weights tried in all, of them
    given up as stalled inside a trial, trials that reached their full-length stage)."""
    stages: tuple[tuple[str, float, int, int], ...] = ()
    """For a method that trains in stages: per stage, (stage, seconds of training spent in it
    over all finished trials, trials that ran it, trials whose delivered weights it gave)."""
    over: str = ""
    """The sweep axis ``by_config`` counts over (the clock's seed)."""
    leaders: tuple[tuple[int, float], ...] = ()
    """(trial, seconds) of each trial that went on past its stage's goal as the study's
    leader."""
    given_up: tuple[tuple[int, float], ...] = ()
    """(trial, seconds in its last stage) of each trial whose stage was given up as out of
    reach of its target: the rest of that stage's budget went to other trials."""


def outcomes(rows: Sequence[TrialRow]) -> Outcomes:
    finished = [r for r in rows if r.state in FINISHED_NAMES]
    reached = {
        name: sum(r.tier in _TIER_ORDER[i:] for r in finished)
        for i, name in enumerate(_TIER_ORDER)
    }
    stopped: dict[str, list[int]] = {}
    for r in finished:
        if r.state == "PRUNED" and r.verdict and r.verdict_epoch is not None:
            stopped.setdefault(r.verdict, []).append(r.verdict_epoch)
    by_config: dict[str, list[int]] = {}
    over = ""
    for r in finished:
        method = registry.get(r.method)
        params = dict(r.params or {})
        if not method.unordered_space or params.pop(method.reporting.axis, None) is None:
            continue
        over = method.reporting.axis
        key = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in sorted(params.items()))  # fmt: skip
        ok, n = by_config.get(key, [0, 0])
        by_config[key] = [ok + (r.tier in _TIER_ORDER), n + 1]
    tried = [r for r in finished if r.attempts is not None]
    attempts = None
    if tried:
        restarts = sum(len(r.restart_epochs) for r in tried)
        grown = sum(r.tuned for r in tried)
        attempts = (sum(r.attempts for r in tried), restarts, grown)
    return Outcomes(
        len(finished), reached, {k: tuple(sorted(v)) for k, v in stopped.items()},
        {k: (v[0], v[1]) for k, v in by_config.items()}, attempts, _stages(finished), over,
        tuple((r.number, r.leading_seconds) for r in finished if r.leading_seconds),
        tuple((r.number, r.stage_seconds[-1][1] if r.stage_seconds else 0.0)
              for r in finished if r.stop_reason == rec.STOP_BEHIND),
    )  # fmt: skip


def _stages(rows: Sequence[TrialRow]) -> tuple[tuple[str, float, int, int], ...]:
    spent: dict[str, list] = {}
    for r in rows:
        for stage, seconds in r.stage_seconds:
            entry = spent.setdefault(stage, [0.0, 0, 0])
            entry[0] += seconds
            entry[1] += 1
    for r in rows:
        if r.delivered_stage in spent:
            spent[r.delivered_stage][2] += 1
    return tuple((k, v[0], v[1], v[2]) for k, v in spent.items())


def outcome_lines(o: Outcomes) -> list[str]:
    """The outcomes in a few plain lines (the text report and the study's note)."""
    lines = ["Tiers reached (at least): " + ", ".join(f"{k} {v} of {o.finished}"
                                                  for k, v in o.reached.items())]  # fmt: skip
    for verdict, epochs in sorted(o.stopped.items()):
        at = ", ".join(map(str, epochs))
        lines.append(f"Stopped as {verdict}: {len(epochs)} (at epoch {at})")
    if o.by_config:
        lines.append(f"Minimum tier reached per setting, over the values of {o.over} tried:")
        only = f"the recipe (only the {o.over} is searched)"
        for key, (ok, n) in sorted(o.by_config.items(), key=lambda kv: -kv[1][0] / kv[1][1]):
            lines.append(f"  {ok} of {n}: {key or only}")
    if o.attempts is not None:
        tried, restarts, grown = o.attempts
        lines.append(
            f"Initial weights tried: {tried} in {o.finished} trials; {restarts} given up as "
            f"stalled inside their trial (started over); {grown} trials went on to the "
            "full-length stage"
        )
    if o.stages:
        lines.append("Where the training time went, and which stage gave each delivered model:")
        for stage, seconds, ran, delivered in o.stages:
            lines.append(f"  {stage}: {seconds:,.0f} s in {ran} trials; delivered the model "
                         f"of {delivered}")  # fmt: skip
    if o.leaders:
        led = ", ".join(f"trial {n} {s:,.0f} s" for n, s in o.leaders)
        lines.append(f"  of it, past its goal as the study's leader (the longer polish): {led}")
    if o.given_up:
        off = ", ".join(f"trial {n} {s:,.0f} s" for n, s in o.given_up)
        lines.append(f"  given up out of reach of the target (the rest of the budget saved): "
                     f"{off}")  # fmt: skip
    return lines
