"""The data behind the report's figures (sweep.report.figures), on hand-made trials and one real
run."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from model.data import DataConfig, make_set
from sweep import records as rec
from sweep.identity import stored_data
from sweep.report import figures as fg
from sweep.report.summary import collect, noise_level, ties_for
from sweep.report.text import render_text, to_json
from sweep.rules.criteria import TIERS, gaps
from sweep.trial_record import read as read_record

LR = FloatDistribution(1e-5, 1e-3, log=True)


def trial(state: TrialState, lr: float, **attrs: object) -> optuna.trial.FrozenTrial:
    value = attrs.get("val_mse") if state == TrialState.COMPLETE else None
    return create_trial(
        state=state, value=value, params={"lr": lr}, distributions={"lr": LR}, user_attrs=attrs
    )


def floor_study() -> optuna.Study:
    """A sweep like the plan's default one: every trial at the predict-zero floor, one pruned
    early, one failed before its first epoch."""
    study = optuna.create_study(direction="minimize")
    study.add_trial(
        trial(
            TrialState.COMPLETE,
            1e-4,
            verdict="healthy",
            tier="below",
            train_mse=0.499,
            val_mse=0.498,
            test_mse=0.5,
            test_train_ratio=1.002,
            epochs=3,
            curves={"val_mse": [0.51, 0.5, 0.498], "online_loss": [0.2, 0.004, 0.003]},
        )
    )
    study.add_trial(
        trial(
            TrialState.PRUNED,
            3e-4,
            verdict="diverging",
            tier="below",
            train_mse=0.52,
            val_mse=0.52,
            test_mse=0.53,
            test_train_ratio=1.02,
            epochs=2,
            curves={"val_mse": [0.52, 0.6], "online_loss": [0.3]},
        )
    )
    study.add_trial(trial(TrialState.FAIL, 5e-5))
    return study


def test_sweep_info_has_one_point_per_scored_trial_and_the_floor() -> None:
    info = fg.sweep_info(collect(floor_study()))
    assert [(p.number, p.state, p.verdict, p.val_mse) for p in info.points] == [
        (0, "COMPLETE", "healthy", 0.498),
        (1, "PRUNED", "diverging", 0.52),
    ]
    assert info.points[1].x == 3e-4
    assert info.tiers == TIERS
    assert info.floor == pytest.approx(0.5, abs=1e-6)
    assert info.floor_from == pytest.approx(0.45)


def test_curves_end_where_a_pruned_trial_stopped() -> None:
    info = fg.curves_info(floor_study().get_trials(), 0.5, "lr")
    by_number = {c.number: c for c in info.curves}
    assert set(by_number) == {0, 1}  # the failed trial has no epoch to draw
    pruned = by_number[1]
    assert (pruned.state, pruned.verdict, pruned.epochs) == ("PRUNED", "diverging", (1, 2))
    assert pruned.val_mse == (0.52, 0.6)
    assert pruned.online_loss == (0.3, None)  # padded, so both panels share the epochs
    assert by_number[0].online_loss == (0.2, 0.004, 0.003)
    assert info.floor == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize(
    ("train", "test", "ratio"),
    [
        (0.004, 0.005, 1.25),
        (0.0, 0.01, math.inf),  # stored as null in the trial: recomputed, not lost
    ],
)
def test_criteria_info_is_the_best_trial_against_every_tier(
    train: float, test: float, ratio: float
) -> None:
    study = optuna.create_study()
    study.add_trial(
        trial(
            TrialState.COMPLETE,
            1e-4,
            train_mse=train,
            val_mse=test,
            test_mse=test,
            test_train_ratio=None,
        )
    )
    info = fg.criteria_info(collect(study))
    assert info is not None
    assert (info.number, info.train_mse, info.test_mse, info.ratio) == (0, train, test, ratio)
    assert [(g.name, g.met) for g in info.standing] == [(g.name, g.met) for g in gaps(train, test)]


def test_criteria_info_is_none_before_any_trial_finished() -> None:
    assert fg.criteria_info(collect(optuna.create_study())) is None


CONFIG = DataConfig(samples=2000)  # 2 s at 1 kHz: whole periods of 1, 3, 5 and 7 Hz


def test_prediction_info_shows_the_first_second_of_the_chosen_frequency() -> None:
    data = make_set(2, CONFIG)
    outputs = data.targets * 0.5
    info = fg.prediction_info(4, outputs, data, CONFIG, freq=3.0)
    assert info.number == 4
    assert info.window_s == 1.0
    assert info.focus.freq == 3.0
    assert len(info.focus.time) == 1000 and info.focus.time[-1] == pytest.approx(0.999)
    np.testing.assert_array_equal(info.focus.target, data.targets[1, :1000])
    np.testing.assert_array_equal(info.focus.output, outputs[1, :1000])
    np.testing.assert_array_equal(info.mixed, data.mixed[:1000])
    assert [p.freq for p in info.panels] == [1.0, 3.0, 5.0, 7.0]
    np.testing.assert_array_equal(info.panels[3].target, data.targets[3, :1000])


def test_prediction_window_is_cut_to_a_short_set() -> None:
    config = DataConfig(samples=200)
    data = make_set(2, config)
    info = fg.prediction_info(0, data.targets, data, config, freq=7.0)
    assert info.window_s == pytest.approx(0.2)
    assert len(info.focus.time) == 200 and info.focus.freq == 7.0


@pytest.mark.parametrize(
    ("freq", "outputs_shape", "message"),
    [
        (4.0, (4, 2000), r"no 4 Hz component .*1, 3, 5, 7 Hz"),
        (3.0, (4, 1999), r"outputs of shape"),
    ],
)
def test_prediction_info_refuses_what_it_cannot_draw(
    freq: float, outputs_shape: tuple[int, int], message: str
) -> None:
    data = make_set(2, CONFIG)
    with pytest.raises(ValueError, match=message):
        fg.prediction_info(0, np.zeros(outputs_shape, dtype=np.float32), data, CONFIG, freq)


@pytest.mark.parametrize(
    ("scale", "expected"),
    [(1.0, 0.0), (0.5, 0.125), (0.0, 0.5)],  # error (1 - scale) sin: (1 - scale)^2 / 2
)
def test_per_freq_info_scores_each_frequency_beside_predicting_zero(
    scale: float, expected: float
) -> None:
    data = make_set(2, CONFIG)
    info = fg.per_freq_info(1, data.targets * scale, data, CONFIG)
    assert info.freqs == (1.0, 3.0, 5.0, 7.0)
    assert info.mse == pytest.approx((expected,) * 4, abs=1e-6)
    assert info.zero_mse == pytest.approx((0.5,) * 4, abs=1e-6)
    assert info.overall == pytest.approx(expected, abs=1e-6)


def test_a_real_trials_model_gives_back_the_test_mse_the_sweep_stored(tiny_study) -> None:
    """The report rebuilds the test set from the study's settings and runs the trial's best
    checkpoint on it: per frequency it must find the numbers the sweep itself recorded. The
    study ran in another folder, so its relative checkpoint paths are found via the db's."""
    study = tiny_study.load()
    config, seed = stored_data(study)
    assert (config.samples, seed) == (200, 2)
    for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)):
        outputs, data, _ = fg.trial_outputs(study, t.number, tiny_study.folder)
        info = fg.per_freq_info(t.number, outputs, data, config)
        stored = read_record(t)
        assert tuple(hz for hz, _ in stored.test_mse_per_freq) == info.freqs
        assert info.mse == pytest.approx([mse for _, mse in stored.test_mse_per_freq], rel=1e-4)
        assert info.overall == pytest.approx(stored.test_mse, rel=1e-4)


def test_trial_outputs_names_a_missing_trial(tiny_study) -> None:
    with pytest.raises(ValueError, match="no trial 99"):
        fg.trial_outputs(tiny_study.load(), 99, tiny_study.folder)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.5001, 0.5000, 0.5011, 0.0040], (pytest.approx(0.0011), 3)),  # the 0.004 learnt
        ([0.5, None, 0.5], (0.0, 2)),
        ([0.5001, 0.004], None),  # one trial at the floor: no spread to measure
        ([], None),
    ],
)
def test_the_noise_level_is_the_spread_at_the_floor(values: list, expected: object) -> None:
    assert noise_level(values, 0.5) == expected


@pytest.mark.parametrize(
    ("scores", "tied"),
    [
        # The default sweep: 1e-5 apart, the spread at the floor 1.1e-3: all tied.
        ([(0, 0.50001), (1, 0.5), (2, 0.5011)], (1, 0, 2)),
        # The best two within the noise (0.0004) of each other, the third not.
        ([(0, 0.3003), (1, 0.3), (2, 0.5), (3, 0.5004)], (1, 0)),
        ([(0, 0.004), (1, 0.5), (2, 0.5004)], None),  # a model that learnt: no tie
        ([(0, 0.5)], None),
    ],
)
def test_trials_within_the_noise_of_the_best_are_tied(scores: list, tied: object) -> None:
    ties = ties_for(scores, 0.5)
    assert (None if ties is None else ties.numbers) == tied


def test_the_report_says_the_best_trial_is_no_better_than_its_ties() -> None:
    study = optuna.create_study()
    for v in (0.50001, 0.5, 0.5011):
        study.add_trial(trial(TrialState.COMPLETE, 1e-4, val_mse=v, train_mse=v, test_mse=v))
    summary = collect(study)
    assert summary.ties is not None and summary.ties.noise == pytest.approx(0.0011)
    text = render_text(summary)
    assert "All 3 finished trials (#1, #0, #2)" in text
    assert "these differences are noise, so #1 is no better than the others" in text
    assert to_json(summary)["ties"]["numbers"] == [1, 0, 2]


def test_at_the_floor_the_ratio_is_not_meaningful_and_not_met() -> None:
    summary = collect(floor_study())
    info = fg.criteria_info(summary)
    assert info is not None and info.at_floor  # best val MSE 0.498: predicts ~0
    assert not any(g.met for g in info.standing)
    text = render_text(summary)
    assert text.count("ratio 1.00 (not meaningful at the floor)") == len(TIERS)
    learnt = optuna.create_study()
    learnt.add_trial(
        trial(TrialState.COMPLETE, 1e-4, train_mse=0.004, val_mse=0.005, test_mse=0.005)
    )
    assert not fg.criteria_info(collect(learnt)).at_floor
    assert "not meaningful" not in render_text(collect(learnt))


def test_a_clock_trials_curves_carry_its_prefix_and_its_lr_scale() -> None:
    study = optuna.create_study()
    dist = {"lr_scale": FloatDistribution(1e-3, 6e-3, log=True)}
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            params={"lr_scale": 3e-3},
            distributions=dist,
            user_attrs={
                "curves": {
                    "val_mse": [0.5, 0.4, 0.3],
                    "prefix": [100, 200],
                    "stage": ["grow", "grow"],
                }
            },
        )
    )
    (curve,) = fg.curves_info(study.get_trials(), 0.5, "lr_scale").curves
    assert (curve.x, curve.prefix) == (3e-3, (100, 200, None))
    assert curve.stage == ("grow", "grow", None)
    (plain,) = fg.curves_info(floor_study().get_trials()[:1], 0.5, "lr").curves
    assert plain.prefix == ()


def test_outcomes_count_tiers_stops_and_success_per_setting_over_seeds() -> None:
    from sweep.report.outcomes import outcome_lines, outcomes
    from sweep.report.summary import TrialRow

    def row(n, state, tier, seed, scale=3e-3, verdict=None, epoch=None):
        return TrialRow(number=n, state=state, verdict=verdict, epochs=10,
                        train_mse=None, val_mse=0.1, test_mse=None, test_train_ratio=None,
                        tier=tier, best_online_loss=None, stop_reason=None,
                        continued_from=None, method="clock",
                        params={"lr_scale": scale, "seed": seed}, verdict_epoch=epoch)  # fmt: skip

    rows = (
        row(0, "COMPLETE", "good", 14),
        row(1, "PRUNED", "below", 3, verdict="stalled", epoch=9),
        row(2, "PRUNED", "below", 5, verdict="stalled", epoch=24),
        row(3, "COMPLETE", "minimum", 7, scale=1e-3),
        row(4, "FAIL", None, 8),
    )
    o = outcomes(rows)
    assert o.finished == 4
    assert o.reached == {"minimum": 2, "good": 1, "excellent": 0}
    assert o.stopped == {"stalled": (9, 24)}
    assert o.by_config == {"lr_scale 0.003": (1, 3), "lr_scale 0.001": (1, 1)}
    text = "\n".join(outcome_lines(o))
    assert "Stopped as stalled: 2 (at epoch 9, 24)" in text
    assert "1 of 3: lr_scale 0.003" in text


def test_outcomes_count_the_initial_weights_each_trial_tried() -> None:
    from sweep.report.outcomes import outcome_lines, outcomes
    from sweep.report.summary import TrialRow

    def row(n, state, tier, attempts, restarts, tuned):
        return TrialRow(number=n, state=state, verdict=None, epochs=10,
                        train_mse=None, val_mse=0.1, test_mse=None, test_train_ratio=None,
                        tier=tier, best_online_loss=None, stop_reason=None,
                        continued_from=None, method="clock", params={"seed": n},
                        attempts=attempts, restart_epochs=restarts, tuned=tuned)  # fmt: skip

    rows = (row(0, "COMPLETE", "good", 1, (), True),
            row(1, "PRUNED", "below", 3, (12, 30), False),
            row(2, "COMPLETE", "minimum", 2, (27,), True))  # fmt: skip
    o = outcomes(rows)
    assert o.attempts == (6, 3, 2)
    assert o.by_config == {"": (2, 3)}
    text = "\n".join(outcome_lines(o))
    assert "2 of 3: the recipe (only the seed is searched)" in text
    assert "Initial weights tried: 6 in 3 trials; 3 given up as stalled" in text
    assert "2 trials went on to the full-length stage" in text
    # A method that never starts over records no attempts, and says nothing about them.
    plain = outcomes(tuple(replace(r, attempts=None) for r in rows))
    assert plain.attempts is None
    assert "Initial weights" not in "\n".join(outcome_lines(plain))


def test_outcomes_say_where_the_time_went_and_which_stage_delivered() -> None:
    from sweep.report.outcomes import outcome_lines, outcomes
    from sweep.report.summary import trial_row

    def row(n, stages, seconds, best_epoch, leading=None):
        curves = {"stage": stages, "seconds": seconds, "val_mse": [0.1] * len(stages)}
        if leading is not None:
            curves["leading"] = leading
        trial = optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE,
            value=0.1,
            params={"seed": n},
            distributions={"seed": optuna.distributions.IntDistribution(0, 99)},
            user_attrs={"curves": curves, "best_epoch": best_epoch, "method": "clock"},
        )
        return replace(trial_row(trial), number=n)

    rows = (row(0, ["grow", "grow", "tune", "polish", "polish"], [1, 2, 4, 8, 16], 5,
                [False, False, False, True, False]),
            row(1, ["grow", "grow"], [3, 5], 1),
            row(2, ["grow", "tune", "polish"], [1, 2, 30], 2))  # fmt: skip
    assert [r.delivered_stage for r in rows] == ["polish", "grow", "tune"]
    assert rows[0].stage_seconds == (("grow", 3), ("tune", 4), ("polish", 24))
    o = outcomes(rows)
    assert o.stages == (("grow", 12, 3, 1), ("tune", 6, 2, 1), ("polish", 54, 2, 1))
    text = "\n".join(outcome_lines(o))
    assert "  polish: 54 s in 2 trials; delivered the model of 1" in text
    # The polish epoch after which trial 0 went on only as the study's leader.
    assert o.leaders == ((0, 16),) and "leader (the longer polish): trial 0 16 s" in text
    assert "leader" not in "\n".join(outcome_lines(outcomes(rows[1:])))
    # A polish given up out of reach of its target: the seconds of its last stage.
    behind = (*rows[:2], replace(rows[2], stop_reason=rec.STOP_BEHIND))
    assert outcomes(behind).given_up == ((2, 30),) and outcomes(rows).given_up == ()
    assert "out of reach of the target (the rest of the budget saved): trial 2 30 s" in (
        "\n".join(outcome_lines(outcomes(behind)))
    )
    # A method with one stage records none, and the lines say nothing of stages.
    assert outcomes(tuple(replace(r, stage_seconds=(), delivered_stage=None)
                          for r in rows)).stages == ()  # fmt: skip


def test_the_text_report_names_the_stage_that_delivered_each_model() -> None:
    study = optuna.create_study()
    study.set_user_attr(rec.STUDY_CONFIG, {"method": "clock"})  # a method with stages
    for v, stages, best, tier in ((0.0004, ["grow", "tune", "polish"], 3, "excellent"),
                                  (0.2, ["grow"], 1, "below")):  # fmt: skip
        curves = {"stage": stages, "seconds": [1.0] * len(stages), "val_mse": [v] * len(stages)}
        study.add_trial(trial(TrialState.COMPLETE, 1e-4, val_mse=v, train_mse=v, test_mse=v,
                              best_epoch=best, curves=curves, tier=tier))  # fmt: skip
    text = render_text(collect(study))
    assert text.splitlines()[2].endswith("  from")
    assert [line.split()[-1] for line in text.splitlines()[3:5]] == ["polish", "grow"]
    assert "tier excellent, delivered by its polish stage)" in text
    assert "  polish: 1 s in 1 trials; delivered the model of 1" in text
    assert "  from" not in render_text(collect(floor_study()))  # one stage: no column
