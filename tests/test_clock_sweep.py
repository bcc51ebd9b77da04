"""The sweep searches the clock method too: recorded with every trial, judged after its grow
stage, compared with L=1 side by side, and evaluable on any seed."""

from __future__ import annotations

import json
import re

import optuna
import pytest
from conftest import study_py

from model.clock.config import ClockConfig as ClockConfigDefault
from model.clock.method import MAX_RESTARTS
from model.data import make_set
from model.delivered import load_model
from model.evaluate import evaluate
from model.lstm import module_from_weights
from sweep import records as rec
from sweep.pruner import DivergencePruner, stall_check
from sweep.report.evaluation import data_config_of
from sweep.rules.stall import STALL_GRAD_NORM, STALL_PATIENCE, STARTED_BLOCK_MSE
from sweep.settings import SweepConfig
from sweep.trial_record import read as read_record

TINY = ["--epochs", "2", "--samples", "200", "--workers", "1", "--storage", "sqlite:///s.db"]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("methods")
    study_py("--trials", "2", "--quiet", *TINY, cwd=folder)
    study_py("--method", "clock", "--trials", "2", "--updates-per-epoch", "2", "--quiet",
             *TINY, cwd=folder)  # fmt: skip
    return folder


def test_each_method_has_its_own_study_and_trials_record_it(both) -> None:
    url = f"sqlite:///{both / 's.db'}"
    clock = optuna.load_study(study_name="lstm-clock", storage=url)
    assert clock.user_attrs["config"]["method"] == "clock"
    assert len(clock.trials) == 2
    for t in clock.trials:
        # Two epochs an attempt: one grows the prefix, one tunes at full length. An attempt
        # whose grow stage ends far from full length with a block unlearnt starts over, up to
        # MAX_RESTARTS times; the last one is stopped as stalled (no tune epoch).
        curves = rec.curves(t)
        attempts = curves["attempt"]
        if t.state == optuna.trial.TrialState.PRUNED:
            assert t.user_attrs["verdict"] == "stalled"
            assert attempts == list(range(MAX_RESTARTS + 1))
            assert curves["restarted"] == [True] * MAX_RESTARTS + [False]
            assert "another seed" in read_record(t).action
        else:
            assert t.state == optuna.trial.TrialState.COMPLETE
            assert curves["stage"][-2:] == ["grow", "tune"]
        assert t.user_attrs["method"] == "clock"
        assert set(t.params) == {"seed"}
        assert len(curves["prefix"]) == t.user_attrs["epochs"]
        assert curves["stage"][0] == "grow"
        assert 0 < t.user_attrs["test_mse"] < 2
    l1 = optuna.load_study(study_name="lstm-l1-lr", storage=url)
    assert all(set(t.params) == {"lr"} for t in l1.trials)


def test_report_compares_the_methods_and_discloses_the_clock(both) -> None:
    out = study_py("report", "--storage", "sqlite:///s.db", "--study-name", "lstm-clock",
                   "--json", cwd=both).stdout  # fmt: skip
    doc = json.loads(out)
    assert doc["method"] == "clock"
    assert {m["method"] for m in doc["methods"]} == {"l1", "clock"}
    assert any("clock method" in n and "L != 1" in n for n in doc["notes"])
    text = study_py("report", "--storage", "sqlite:///s.db", cwd=both).stdout
    assert "Methods side by side" in text and "lstm-clock" in text


def test_a_clock_trial_evaluates_on_a_fresh_seed(both) -> None:
    out = study_py("eval", "--trial", "1", "--seed", "11", "--storage", "sqlite:///s.db",
                   "--study-name", "lstm-clock", cwd=both).stdout  # fmt: skip
    printed = float(re.search(r"noise seed 11: honest MSE ([0-9.]+)", out).group(1))
    # The same number through the clock's own (torch) evaluation of the stored model.
    study = optuna.load_study(study_name="lstm-clock", storage=f"sqlite:///{both / 's.db'}")
    weights, config, _ = load_model(both / study.trials[1].user_attrs["best_checkpoint"])
    model = module_from_weights(weights, 5, config.hidden_size)
    expected = evaluate(model, make_set(11, data_config_of(study))).mse
    assert printed == pytest.approx(expected, abs=1e-5)


def test_the_grow_stage_is_not_judged() -> None:
    cfg = SweepConfig(method="clock", epochs=30)
    judged_from = cfg.training_method.judged_from(cfg.settings)
    assert judged_from == 28 and cfg.study_name == "lstm-clock"
    study = optuna.create_study(pruner=DivergencePruner(judge_from_step=judged_from))
    trial = study.ask()
    # The grow stage swings by far more than 20%; the tune stage is smooth.
    grow = [0.5, 0.9, 0.3, 0.8, 0.2] + [0.5] * 22
    for epoch, v in enumerate([*grow, 0.004, 0.003, 0.0029], start=1):
        trial.report(v, epoch)
        assert not trial.should_prune(), epoch
    trial.report(0.006, 31)  # a real jump in the tune stage is still caught
    assert trial.should_prune()


def test_clock_defaults_follow_the_measured_recipe() -> None:
    from model.clock.config import ClockConfig
    from sweep.space import suggest

    trial = optuna.create_study().ask()
    sweep = SweepConfig(method="clock")
    cfg = suggest(trial, sweep.training_method, sweep.settings)
    assert isinstance(cfg, ClockConfig)
    # A grown clock goes straight to the L-BFGS polish (bench/results/polish.md); the tune stage
    # is there when asked for, or when the polish is off.
    # 40 grow epochs an attempt, where the plan's 30 epochs gave 27: twice the attempts grew
    # over 32 seeds (bench/results/grow_rate.md); an L=1 sweep keeps the plan's 30.
    assert (sweep.epochs, SweepConfig().epochs, SweepConfig(method="clock", epochs=30).epochs) == (
        44,
        30,
        30,
    )
    assert cfg.grow_updates == 4000 and cfg.tune_updates == 0 and cfg.updates_per_epoch == 100
    # Each grown clock polishes until excellent (600 at most); the study's leader goes on to
    # 2,000 evaluations or under 0.00015 (sweep.rules.leader).
    assert (cfg.polish_evaluations, cfg.polish_target, cfg.polish_goal_after) == (600, 0.001, 200)
    assert (cfg.polish_leader_evaluations, cfg.polish_leader_target) == (2000, 1.5e-4)
    # ... and a run above 0.002 at its goal is given up there (bench/results/polish.md).
    assert cfg.polish_give_up == 0.002
    assert cfg.epochs == 40 * 9 + 20
    # L-BFGS rounds on a grow plateau above T = 100 (bench/results/grow_rate.md).
    assert (cfg.grow_lbfgs, cfg.grow_lbfgs_after, cfg.grow_lbfgs_min_prefix) == (50, 1, 100)
    # And one 300-evaluation L-BFGS call where the stall rule fires (grow_rate.md).
    assert cfg.stall_rescue == 300
    # The grow stage in the polish's compiled loops (bench/results/grow_engines.md).
    assert cfg.grow_engine == "compiled" and ClockConfigDefault().grow_engine == "torch"
    assert sweep.training_method.identity(sweep.settings)["clock_recipe"]["grow_engine"] == (
        "compiled"
    )
    assert sweep.training_method.identity(sweep.settings)["clock_recipe"]["stall_rescue"] == 300
    assert sweep.training_method.identity(sweep.settings)["clock_recipe"]["grow_lbfgs"] == 50
    unpolished = SweepConfig(method="clock", polish_evaluations=0)
    plain = suggest(trial, unpolished.training_method, unpolished.settings)
    assert (plain.grow_updates, plain.tune_updates, plain.polish_evaluations) == (4000, 400, 0)
    # The recipe: S ignored (so one realisation a block), tune once grown, and an attempt
    # starts over where the sweep's stall rule would stop it.
    assert cfg.ignore_s and cfg.realisations == cfg.tune_realisations == 1
    assert cfg.tune_when_grown and cfg.max_restarts > 0
    # The rule is the sweep's own, handed to the trainer (written once: sweep.rules.stall).
    assert sweep.settings.stall_check is stall_check
    assert (sweep.settings.stall.patience, sweep.settings.stall.grad_norm) == (
        STALL_PATIENCE,
        STALL_GRAD_NORM,
    )
    assert sweep.settings.stall.started_block_mse == STARTED_BLOCK_MSE


def test_the_full_length_stage_can_be_set_apart_from_the_grow_budget() -> None:
    from sweep.space import suggest

    # bench/results/excellent.md's schedule: the recipe's 27 grow epochs, then 4,000 tune updates.
    sweep = SweepConfig(method="clock", epochs=67, tune_epochs=40)
    cfg = suggest(optuna.create_study().ask(), sweep.training_method, sweep.settings)
    assert (cfg.grow_updates, cfg.tune_updates) == (2700, 4000)
    assert sweep.training_method.judged_from(sweep.settings) == 28
    assert sweep.training_method.identity(sweep.settings)["tune_epochs"] == 40


def test_the_sweep_figure_of_a_clock_study_plots_the_seed(both) -> None:
    from sweep.report.figures import sweep_info
    from sweep.report.summary import collect

    study = optuna.load_study(study_name="lstm-clock", storage=f"sqlite:///{both / 's.db'}")
    info = sweep_info(collect(study))
    assert info.x_title.startswith("seed")
    assert sorted(p.x for p in info.points) == sorted(t.params["seed"] for t in study.trials)


def test_a_clock_study_starts_with_the_best_measured_point_once(tmp_path) -> None:
    from model.clock.method import BEST_MEASURED
    from sweep.identity import open_study

    config = SweepConfig(method="clock", storage=f"sqlite:///{tmp_path / 's.db'}")
    study = open_study(config)
    open_study(config)  # opened again (a resume, another worker): not queued twice
    from sweep.space import suggest

    assert len(study.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 1
    first = suggest(study.ask(), config.training_method, config.settings)
    assert {k: getattr(first, k) for k in BEST_MEASURED} == BEST_MEASURED
    l1 = open_study(SweepConfig(storage=f"sqlite:///{tmp_path / 't.db'}"))
    assert l1.get_trials() == []  # the plan's sweep favours no lr


def test_the_stall_rule_reads_a_clock_grown_at_grow_until(tmp_path) -> None:
    # The sweep's grow stage is over at T = GROW_UNTIL: the pruner and the trial's verdict read
    # that as full length, so an attempt that got there is never called stalled.
    from model.clock.method import GROW_UNTIL
    from sweep.identity import open_study

    clock = SweepConfig(method="clock", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert clock.grown_at == GROW_UNTIL < clock.samples
    assert open_study(clock).pruner._full_length == GROW_UNTIL
    short = SweepConfig(method="clock", samples=400, storage=f"sqlite:///{tmp_path / 'u.db'}")
    assert short.grown_at == 400  # a block shorter than grow_until grows to its length
    l1 = SweepConfig(storage=f"sqlite:///{tmp_path / 't.db'}")
    assert open_study(l1).pruner._full_length == l1.samples
