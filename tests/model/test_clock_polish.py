"""The clock's polish stage: L-BFGS on the full-length loss, which with S ignored is the honest
MSE itself; it keeps S's weights at zero, and a run cut off mid-polish continues to the same
numbers (the optimizer's history travels in the checkpoint)."""

from __future__ import annotations

import re
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runs import SLOW_SAVE_ENV, Sweep, assert_same_run, run_study, tiny_args, trials
from optuna.trial import FrozenTrial, TrialState

from model.clock import state as clock_state
from model.clock.batch import S_COLUMN
from model.clock.config import STAGE_POLISH, ClockConfig
from model.clock.polish import MAX_LINE_SEARCH, full_length_batch
from model.clock.training import ClockTraining
from model.data import DataConfig, make_set
from model.lstm import module_from_weights
from model.method import STOP_CONVERGED, STOP_TARGET
from sweep import records as rec

DATA = DataConfig(samples=300)
CONFIG = ClockConfig(seed=1, grow_updates=200, tune_updates=100, polish_evaluations=400,
                     updates_per_epoch=100)  # fmt: skip


def _run(config: ClockConfig = CONFIG) -> ClockTraining:
    return ClockTraining.start(config, make_set(1, DATA), make_set(3, DATA), DATA)


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> ClockTraining:
    """The run to its end; its checkpoint after every epoch is kept as ``run.saved``."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("polish-checkpoints")
    run = _run()
    run.saved = {}
    for report in run.epochs():
        run.saved[report.epoch] = folder / f"epoch-{report.epoch}.npz"
        clock_state.save(run.state, run.saved[report.epoch])
    return run


def test_the_polish_follows_the_tune_stage_and_lowers_the_honest_mse(whole) -> None:
    stages = [r.stage for r in whole.state.history]
    assert stages[:3] == ["grow", "grow", "tune"] and set(stages[3:]) == {STAGE_POLISH}
    polish = [r for r in whole.state.history if r.stage == STAGE_POLISH]
    assert all(r.judged for r in polish)  # the plan's rules judge it, as they do the tune
    vals = [whole.state.history[2].val_mse] + [r.val_mse for r in polish]
    # Every epoch lowers it, except a last one that found no descent at all (converged; on
    # some CPUs it leaves the weights as they were).
    lowered = vals if polish[-1].stop_reason != STOP_CONVERGED else vals[:-1]
    assert all(b < a for a, b in zip(lowered, lowered[1:], strict=False)), vals
    assert vals[-1] <= vals[-2], vals
    # Steps count loss+gradient evaluations (what the budget counts), not L-BFGS iterations;
    # the stage spends its budget unless the line search finds no further descent (on some
    # CPUs this tiny run converges early: 190 evaluations on an AMD EPYC, 400 on an Intel Xeon).
    spent = sum(r.steps for r in polish)
    assert spent == whole.state.updates - whole.state.polish_start
    # An epoch ends once its evaluations reach the budget, but only between L-BFGS
    # iterations: the last one's line search may run past it (402 on an Intel Xeon).
    budget_spent = 400 <= spent <= 400 + MAX_LINE_SEARCH
    assert budget_spent or whole.state.stop_reason == STOP_CONVERGED, (spent, whole.state)
    assert spent > len(polish)
    assert whole.state.weights["lstm.weight_ih_l0"][:, S_COLUMN].tolist() == [0.0] * 256


def test_its_progress_line_counts_the_stage_against_its_budget(whole) -> None:
    from model.clock.method import ClockMethod

    polish = [r for r in whole.state.history if r.stage == STAGE_POLISH]
    # Each epoch carries the stage's evaluations so far, which the progress line shows
    # against the budget (it showed the epoch's own, "100 evaluations, budget 400", every epoch).
    assert [r.stage_steps for r in polish] == list(np.cumsum([r.steps for r in polish]))
    line = ClockMethod().progress(CONFIG, polish[-1])
    assert f"{polish[-1].stage_steps} of 400 evaluations" in line, line
    assert all(r.stage_steps == 0 for r in whole.state.history if r.stage != STAGE_POLISH)


def test_its_progress_line_prints_no_learning_rate_for_lbfgs(whole) -> None:
    from model.clock.method import ClockMethod

    # L-BFGS's fixed lr of 1 (its line search scales the step) read "lr 1.00e+00" on the line.
    polish = next(r for r in whole.state.history if r.stage == STAGE_POLISH)
    grow = next(r for r in whole.state.history if r.stage != STAGE_POLISH)
    assert ClockMethod().step_text(polish) == ""
    assert ClockMethod().step_text(grow) == f"lr {grow.lr:.2e}"


def test_its_loss_is_the_honest_mse(whole) -> None:
    """With S ignored the full-length training loss and the honest MSE on a noisy set agree:
    what the polish minimises is what the sweep scores."""
    model = module_from_weights(whole.state.best_weights, DATA.input_size, 64)
    x, y = full_length_batch(DATA)
    with torch.no_grad():
        out, _ = model(x, model.init_state(x.shape[0]))
    loss = float(torch.mean((out - y) ** 2))
    assert loss == pytest.approx(whole.state.best_val, rel=1e-5)


def _continue(whole: ClockTraining, state: clock_state.ClockState) -> ClockTraining:
    again = ClockTraining(whole.train_set, whole.val_set, state, DATA)
    for _ in again.epochs():
        pass
    return again


@pytest.mark.parametrize("cut", [4, 5])
def test_a_run_continued_mid_polish_computes_the_same_numbers(whole, cut) -> None:
    state = clock_state.load(whole.saved[cut])
    assert state.stage == STAGE_POLISH and state.optimizer["state"]  # a history to carry
    again = _continue(whole, state)
    assert [r.val_mse for r in again.state.history] == [r.val_mse for r in whole.state.history]
    assert _same_weights(again.state.best_weights, whole.state.best_weights)


def test_without_its_history_the_continued_run_differs(whole) -> None:
    """The control for the test above: the L-BFGS history is what makes the continuation exact
    (a checkpoint that dropped it would continue to other numbers)."""
    state = clock_state.load(whole.saved[4])
    model = module_from_weights(state.weights, DATA.input_size, 64)
    fresh = torch.optim.LBFGS(model.parameters()).state_dict()
    again = _continue(whole, replace(state, optimizer=fresh))
    assert not _same_weights(again.state.best_weights, whole.state.best_weights)


def test_a_polish_stops_at_its_target(whole) -> None:
    """Polish to a target: the first polish epoch under it ends the run, the rest of the budget
    unspent."""
    polish = [r for r in whole.state.history if r.stage == STAGE_POLISH]
    target = (polish[0].val_mse + polish[1].val_mse) / 2  # met by the second epoch, not the first
    run = _run(replace(CONFIG, polish_target=target))
    reports = list(run.epochs())
    assert [r.val_mse for r in reports] == [r.val_mse for r in whole.state.history[:5]]
    assert reports[-1].stop_reason == STOP_TARGET and reports[-1].stage == STAGE_POLISH


def test_both_engines_polish_alike_and_the_default_is_compiled(whole, monkeypatch) -> None:
    """One polish epoch from the same checkpoint in each engine (ClockConfig.polish_engine):
    the default runs in model.sequence, and both lower the honest MSE alike. Not to the
    digit: this tiny clock is far from a minimum, where float32 rounding soon sends two
    L-BFGS runs apart (1.6% after 100 evaluations on an Intel Xeon); a wrong gradient would
    not come near."""
    from model import sequence

    calls = []
    real = sequence.error_sums
    monkeypatch.setattr(sequence, "error_sums", lambda *a: calls.append(1) or real(*a))
    state = clock_state.load(whole.saved[3])  # the tune stage's end: the polish is next
    assert state.config.polish_engine == "compiled"
    vals = {}
    for engine in ("compiled", "torch"):
        calls.clear()
        run = ClockTraining(whole.train_set, whole.val_set,
                            replace(state, config=replace(state.config, polish_engine=engine)),
                            DATA)  # fmt: skip
        report = run.run_epoch()
        assert report.stage == STAGE_POLISH and report.steps >= 100
        assert bool(calls) == (engine == "compiled")
        vals[engine] = report.val_mse
    assert max(vals.values()) < 0.9 * state.history[-1].val_mse, vals
    assert vals["compiled"] == pytest.approx(vals["torch"], rel=0.05), vals


def test_a_polish_needs_s_ignored() -> None:
    with pytest.raises(ValueError, match="polish_evaluations needs ignore_s"):
        replace(CONFIG, ignore_s=False)


# --- Through the command: a trial killed mid-polish ends as if never killed ---
NAME = "polish"


def _args(url: str) -> list[str]:
    # 100 samples: the prefix starts at full length, so one grow epoch, one tune epoch, then
    # three polish epochs of 20 evaluations (20 updates an epoch: the stages and epochs of 100,
    # at a fifth of the work).
    base = tiny_args(url, NAME, trials=1, epochs=2, samples=100)
    return ["--method", "clock", "--tune-epochs", "1", "--updates-per-epoch", "20",
            "--polish-evaluations", "60", *base]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> FrozenTrial:
    folder = tmp_path_factory.mktemp("polish-reference")
    url = f"sqlite:///{folder / 's.db'}"
    done = run_study(_args(url), cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    (t,) = trials(url, NAME)
    assert rec.curve(t, rec.STAGE) == ["grow", "tune", "polish", "polish", "polish"]
    return t


def test_a_trial_killed_mid_polish_ends_as_if_never_killed(
    tmp_path: Path, uninterrupted: FrozenTrial
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    sweep = Sweep(_args(url), cwd=tmp_path, env={SLOW_SAVE_ENV: "0.5"})
    sweep.wait_until(lambda: sweep.saw(r"trial 0 epoch 3/\d+ .*stage polish"))
    assert sweep.signal(signal.SIGKILL) == -signal.SIGKILL

    again = run_study(_args(url), cwd=tmp_path)

    assert again.returncode == 0, again.stdout + again.stderr
    found = re.search(r"continuing trial 0 from epoch (\d+)", again.stdout)
    assert found and int(found.group(1)) in (3, 4), again.stdout  # mid-polish
    cut, heir = trials(url, NAME)
    assert cut.state == TrialState.FAIL and heir.user_attrs["continued_from"] == 0
    assert_same_run(heir, uninterrupted)
