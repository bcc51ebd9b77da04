"""What the clock method says about its runs: the disclosure every report of a clock model
gives, the stage part of a progress line, the trial note's recipe and which stage delivered
the weights. Pure functions of a config, a report or a state (``model.clock.method`` hands
them to the sweep through the ``Method`` interface)."""

from __future__ import annotations

from model.clock.config import STAGE_GROW, STAGE_POLISH, STAGE_TUNE, ClockConfig
from model.clock.state import ClockReport, ClockState
from model.method import STOP_BEHIND

#: What trains each stage, for progress lines, notes and reports.
STAGE_OPTIMIZERS = {STAGE_GROW: "Adam", STAGE_TUNE: "Adam", STAGE_POLISH: "L-BFGS"}

#: The advice on a run whose polish was given up out of reach of its target: more polish would
#: not make it excellent (bench/results/polish.md), another seed may.
OUT_OF_REACH_ACTION = (
    "another seed: this clock's polish was given up, too far above the excellent tier for "
    "more of it to get there; the study's excellent runs are the ones to use"
)

DISCLOSURE = (
    "This model was trained with the clock method, not with the plan's L=1 loop: each update "
    "backpropagates from the zero state over a prefix of every block that grows as it is "
    "learnt, then is trained at full length (by default L-BFGS polishes it; Adam first "
    "where a tune stage is asked for). It still answers the assignment, which allows "
    "L != 1 with a justification: the model is the same LSTM, it reads one sample per step "
    "with its state carried, and it is evaluated exactly as defined (frozen weights, whole "
    "sets, state reset at each block start). The justification: S(t) carries no information "
    "about t, so a frozen model can only beat 0.5 as a clock started by the reset, and "
    "one-step (L=1) gradients cannot teach a clock. Its input weights for S were held at zero "
    "throughout (the recipe's ignore_s), so it ignores S exactly: it was trained without the "
    "assignment's noise having any effect, and its honest MSE is the same on every noise "
    "seed. The result holds under the noise because this noise says nothing about t: no "
    "model can do better by reading S."
)


def _until_leading(stage: list[ClockReport]) -> int:
    """A stage's steps up to the epoch that spent its own budget and went on as the study's
    leader (the whole stage where it never led): the note read "801 of 600 evaluations"."""
    steps = 0
    for r in stage:
        steps += r.steps
        if r.leading:
            break
    return steps


def _leader_budget(config: ClockConfig) -> str:
    if config.polish_leader_evaluations <= config.polish_evaluations:
        return ""
    return f" ({config.polish_leader_evaluations} for the study's leader)"


def progress(config: ClockConfig, report: ClockReport) -> str:
    """The stage part of an epoch's progress line: its optimiser, and the prefix and attempt
    or the polish's evaluations of its budget."""
    # Attempts counted from 1, out of the most a trial makes ("attempt 0" read as none).
    restart = (", stalled: starting over" if report.restarted
               else ", stalled: an L-BFGS call on the prefix grew T" if report.rescued
               else "")  # fmt: skip
    optimizer = STAGE_OPTIMIZERS.get(report.stage, "?")
    if report.stage == STAGE_GROW and config.grow_lbfgs:
        optimizer += ", L-BFGS on plateaus"
    stage = f"stage {report.stage} ({optimizer})"
    if report.stage == STAGE_POLISH:
        lead = ", leading the study: polishing on" if report.leading else ""
        return (f"{stage} {report.stage_steps} of {config.polish_evaluations} evaluations"
                f"{_leader_budget(config)}{lead}")  # fmt: skip
    return (f"{stage} prefix {report.prefix} "
            f"attempt {report.attempt + 1}/{config.max_restarts + 1}{restart}")  # fmt: skip


def delivered_by(state: ClockState) -> str:
    """Which stage and optimiser gave the delivered weights, with the evaluations or updates
    spent (a leader's longer polish apart, a polish given up said so)."""
    if not 0 < state.best_epoch <= len(state.history):
        return ""
    best = state.history[state.best_epoch - 1]
    stage = [r for r in state.history if r.stage == best.stage]
    spent = sum(r.steps for r in stage)
    own = _until_leading(stage)
    budget = {STAGE_TUNE: state.config.tune_updates,
              STAGE_POLISH: state.config.polish_evaluations}.get(best.stage)  # fmt: skip
    of = f" of {budget}" if budget else ""
    unit = "evaluations" if best.stage == STAGE_POLISH else "updates"
    leader_budget = state.config.polish_leader_evaluations
    lead = (f"; {spent - own} more as the study's leader, up to {leader_budget} in all"
            if spent > own else "")  # fmt: skip
    if state.stop_reason == STOP_BEHIND:
        c = state.config
        lead += (f"; given up there, still above {c.polish_give_up:g}: out of reach of "
                 f"{c.polish_target:g} by the recorded sweeps")  # fmt: skip
    return (f"the delivered weights come from its {best.stage} stage "
            f"({STAGE_OPTIMIZERS.get(best.stage, '?')}, epoch {state.best_epoch}, "
            f"{own}{of} {unit} spent in that stage{lead})")  # fmt: skip


def describe(config: ClockConfig) -> str:
    """A run's recipe in one paragraph: what the trial note says it was trained with."""
    c = config
    noise = "S ignored (its input weights held at zero)" if c.ignore_s else "fresh noise"
    return (
        f"seed {c.seed} (a restart k draws its weights from seed {c.seed} and k; up to "
        f"{c.max_restarts} restarts), {noise}; grow: prefix {c.prefix_start} x "
        f"{c.growth:g} whenever its MSE is under {c.growth_threshold:g}, lr "
        f"{c.lr_scale:g} x min(1, ({c.lr_ref_length}/T)^{c.lr_power:g}), at most "
        f"{c.grow_updates} updates an attempt, {c.realisations} realisation(s) a block"
        + (f", over once T reaches {c.grow_until}" if c.grow_until else "")
        + (
            f", the last {c.grow_lbfgs} of an epoch one L-BFGS call on the prefix once T "
            f"(above {c.grow_lbfgs_min_prefix}) has been flat for {c.grow_lbfgs_after} "
            f"epoch(s)"
            if c.grow_lbfgs
            else ""
        )
        + (
            f", and where the stall rule fires, one L-BFGS call of {c.stall_rescue} "
            f"evaluations on the stalled prefix before the attempt is given up"
            if c.stall_rescue
            else ""
        )
        + "; tune: "
        f"{c.tune_updates} full-length updates, {c.tune_realisations} a block, lr "
        f"{c.tune_lr_max:g} after {c.tune_warmup} warm-up, cosine to {c.tune_lr_min:g}"
        + (
            f"; polish: L-BFGS on the full-length loss, at most {c.polish_evaluations} "
            f"evaluations, history {c.polish_history}"
            if c.polish_evaluations
            else ""
        )
        + (f", stopping once under {c.polish_target:g}" if c.polish_target else "")
        + (
            f" after at least {c.polish_goal_after}"
            if c.polish_target and c.polish_goal_after
            else ""
        )
        + (f", given up while above {c.polish_give_up:g} from then on" if c.polish_give_up else "")
        + (
            f"; the study's leader polishes on, up to {c.polish_leader_evaluations} "
            f"evaluations in all"
            + (f" or under {c.polish_leader_target:g}" if c.polish_leader_target else "")
            if c.polish_evaluations and c.polish_leader_evaluations > c.polish_evaluations
            else ""
        )
    )
