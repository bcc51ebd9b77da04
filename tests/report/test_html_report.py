"""`study.py report --html`: one self-contained page, drawn from the figures' data."""

from __future__ import annotations

import html
import json
import math
import re

import optuna
import pytest
from conftest import REPORT_FIGURES, study_py
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from plotly.offline import get_plotlyjs

import study
from sweep.report import criteria_plots, plots
from sweep.report import figures as fg
from sweep.report import html as hr
from sweep.report.summary import collect
from sweep.rules.criteria import TIERS

FIGURES = REPORT_FIGURES
SECTIONS = (
    "1. The sweep",
    "2. Learning curves",
    "3. The best trial against the success",
    "4. The model's output on the test set",
    "5. Test MSE per frequency",
)


def floor_study() -> optuna.Study:
    """Two trials at the predict-zero floor, one of them pruned; no checkpoints on disk."""
    study = optuna.create_study()
    lr = FloatDistribution(1e-5, 1e-3, log=True)
    for state, value, verdict in (
        (TrialState.COMPLETE, 0.49, "healthy"),
        (TrialState.PRUNED, 0.5, "plateau"),
    ):
        attrs = dict(
            verdict=verdict,
            tier="below",
            train_mse=value,
            val_mse=value,
            test_mse=value,
            test_train_ratio=1.0,
            best_checkpoint="gone/best.npz",
            curves={"val_mse": [0.6, value], "online_loss": [0.01, 0.004]},
        )
        study.add_trial(
            create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                params={"lr": 1e-4},
                distributions={"lr": lr},
                user_attrs=attrs,
            )
        )
    return study


def test_report_command_writes_one_offline_page_with_every_section(tiny_study, tmp_path) -> None:
    out = tmp_path / "sub" / "report.html"
    out.parent.mkdir()  # a missing folder is refused (test_faults), not made
    proc = study_py(
        "report", "--storage", tiny_study.url, "--study-name", tiny_study.name, "--html", str(out)
    )
    assert "Best trial by validation MSE" in proc.stdout  # the text report is still printed
    assert f"report written to {out.resolve()}" in proc.stdout
    page = out.read_text(encoding="utf-8")
    assert "plotly.js v" in page  # the library itself is in the file...
    assert not re.search(r"<script[^>]+src=", page)  # ...and nothing is fetched
    outside_the_library = page.replace(get_plotlyjs(), "")
    assert "http" not in outside_the_library and "mathjax" not in outside_the_library.lower()
    for div in FIGURES:
        assert page.count(f'id="{div}"') == 1, div
    assert page.count("Plotly.newPlot(") == len(FIGURES)
    positions = [page.index(f"<h2>{html.escape(s)}") for s in SECTIONS]
    assert positions == sorted(positions)
    best = collect(tiny_study.load()).best
    assert f"Trial #{best.number}&#x27;s best checkpoint" in page
    assert "3 Hz, first 0.2 s of the test set" in page  # f2 by default; the set is 0.2 s long


def test_report_draws_another_trial_and_frequency_and_keeps_json_clean(
    tiny_study, tmp_path, capsys
) -> None:
    out = tmp_path / "r.html"
    argv = ["report", "--storage", tiny_study.url, "--study-name", tiny_study.name]
    assert study.main([*argv, "--html", str(out), "--trial", "2", "--freq", "5", "--json"]) == 0
    proc = capsys.readouterr()
    assert json.loads(proc.out)["study"] == tiny_study.name  # report lines go to stderr
    assert "report written to" in proc.err
    page = out.read_text(encoding="utf-8")
    assert "Trial #2&#x27;s best checkpoint" in page
    assert "5 Hz, first 0.2 s of the test set" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--freq", "4"], "no 4 Hz component in this study (its frequencies: 1, 3, 5, 7 Hz)"),
        (["--trial", "99"], "study 'tiny' has no trial 99"),
        (
            ["--trial", "1", "--no-html"],
            "--trial draws graphs in the HTML report: give --html PATH too",
        ),
    ],
)
def test_report_refuses_bad_choices_in_one_line(
    tiny_study, tmp_path, capsys, args, message
) -> None:
    # In-process (study.main), unlike the runs above: only the answer is under test here.
    out = tmp_path / "r.html"
    html_args = [] if "--no-html" in args else ["--html", str(out)]
    args = [a for a in args if a != "--no-html"]
    argv = ["report", "--storage", tiny_study.url, "--study-name", tiny_study.name]
    assert study.main([*argv, *html_args, *args]) == 2
    assert capsys.readouterr().err == f"study.py: error: {message}\n"
    assert not out.exists()


def test_notes_come_first_and_a_missing_model_is_said_not_raised() -> None:
    page = hr.build(floor_study())
    notes = collect(floor_study()).notes
    assert notes and "predict-zero floor" in notes[0]
    first_section = page.index("<section>")
    for note in notes:
        assert page.index(html.escape(note)) < first_section
    assert "Cannot load trial 0&#x27;s model" in page  # its checkpoint is not on disk
    for div in FIGURES[:3]:
        assert f'id="{div}"' in page


def test_the_same_study_gives_the_same_bytes() -> None:
    # So re-attaching an unchanged report is recognised as the same artifact.
    study = floor_study()
    assert hr.build(study) == hr.build(study)


def test_a_study_without_finished_trials_still_renders() -> None:
    page = hr.build(optuna.create_study())
    assert page.count("No finished trial yet.") >= 2
    assert 'id="fig-sweep"' in page and 'id="fig-curves"' in page


def _lines(fig) -> dict[float, str]:
    """Horizontal lines (y -> dash) of a figure."""
    return {s.y0: s.line.dash for s in fig.layout.shapes if s.type == "line" and s.y0 == s.y1}


def learnt_study() -> optuna.Study:
    """A sweep that learns: trials decades apart, one of them in the good tier."""
    study = optuna.create_study()
    lr = FloatDistribution(1e-5, 1e-3, log=True)
    for value, tier in ((0.004, "good"), (0.3, "below"), (0.5, "below")):
        attrs = dict(verdict="healthy", tier=tier, train_mse=value, val_mse=value,
                     test_mse=value, curves={"val_mse": [0.6, value]})  # fmt: skip
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=value,
                                     params={"lr": 1e-4}, distributions={"lr": lr},
                                     user_attrs=attrs))  # fmt: skip
    return study


def test_sweep_figure_on_a_learning_sweep_is_log_with_every_tier_and_full_labels() -> None:
    fig = plots.sweep_figure(fg.sweep_info(collect(learnt_study())))
    assert fig.layout.yaxis.type == "log"
    lines = _lines(fig)
    assert 0.5 in lines
    assert {t.max_test for t in TIERS} <= set(lines)
    labels = {a.text: a.y for a in fig.layout.annotations}
    # The axis is logarithmic: a label's y is log10 of the line's value.
    assert labels["floor (no clock): MSE 0.5"] == pytest.approx(math.log10(0.5))
    assert labels["minimum: test MSE < 0.015"] == pytest.approx(math.log10(0.015))
    assert "5" not in fig.layout.yaxis.ticktext and "0.5" in fig.layout.yaxis.ticktext
    # One legend entry per mark drawn: a diamond (good tier) and circles (none met).
    marks = {(tr.name, tr.marker.color, tr.marker.symbol) for tr in fig.data}
    assert marks == {
        ("healthy, good", plots.VERDICT_COLOURS["healthy"], "diamond"),
        ("healthy, no tier met", plots.VERDICT_COLOURS["healthy"], "circle"),
    }


def floor_sweep(n: int) -> optuna.Study:
    """``n`` trials at the floor, 5e-5 apart, as the default L=1 sweep ends."""
    study = optuna.create_study()
    lr = FloatDistribution(1e-5, 1e-3, log=True)
    for i in range(n):
        v = 0.5 + 5e-5 * i
        study.add_trial(create_trial(
            state=TrialState.COMPLETE, value=v, params={"lr": 1e-5 * (1 + i)},
            distributions={"lr": lr},
            user_attrs=dict(verdict="plateau" if i % 3 else "healthy", tier="below",
                            train_mse=v, val_mse=v, test_mse=v, test_train_ratio=1.0,
                            curves={"val_mse": [0.51, v], "online_loss": [0.54, 0.37]}),
        ))  # fmt: skip
    return study


def test_sweep_figure_at_the_floor_zooms_a_linear_axis_onto_the_trials() -> None:
    info = fg.sweep_info(collect(floor_sweep(20)))
    fig = plots.sweep_figure(info)
    axis = fig.layout.yaxis
    assert axis.type == "linear"
    lo, hi = axis.range
    assert lo < 0.5 and 0.5 + 5e-5 * 19 < hi < 0.502  # every trial apart, the floor on it
    assert set(_lines(fig)) == {0.5}  # the tiers (0.015 and below) are off this axis...
    assert any("tier limits" in a.text for a in fig.layout.annotations)  # ...and it says so
    assert info.noise == pytest.approx(5e-5 * 19)
    bands = [(b.y0, b.y1) for b in fig.layout.shapes if b.type == "rect"]
    assert (0.5, pytest.approx(0.5 + info.noise)) in bands  # within noise of the best
    # Only circles are drawn (no tier met), so the legend speaks of colours only.
    assert {tr.marker.symbol for tr in fig.data} == {"circle"}
    assert sorted(tr.name for tr in fig.data) == ["healthy", "plateau"]
    intro = plots.sweep_intro(info)
    assert "shape" not in intro and "zoomed" in intro


def test_curves_figure_gives_each_panel_its_range_and_each_of_20_trials_a_colour() -> None:
    info = fg.curves_info(floor_sweep(24).get_trials(), 0.5, "lr")
    fig = plots.curves_figure(info)
    assert fig.layout.yaxis2.matches is None and fig.layout.yaxis.range != fig.layout.yaxis2.range
    val, online = fig.layout.yaxis, fig.layout.yaxis2
    assert val.type == "linear" and val.range[1] < 0.52  # honest MSEs 0.50-0.51, zoomed
    assert online.type == "log" and 10 ** online.range[0] < 0.37  # its own range
    colours = [tr.line.color for tr in fig.data if tr.showlegend]
    assert len(set(colours)) == 24
    # The legend runs from the lowest lr to the highest, as the colour scale does.
    ranked = sorted((tr.legendrank, tr.name) for tr in fig.data if tr.showlegend)
    assert ranked[0][1].startswith("#0 lr 1.0e-05") and ranked[-1][1].startswith("#23 ")


def test_a_clock_studys_curves_get_a_prefix_panel() -> None:
    study = optuna.create_study()
    dist = {"lr_scale": FloatDistribution(1e-3, 6e-3, log=True)}
    for i in range(2):
        study.add_trial(create_trial(
            state=TrialState.COMPLETE, value=0.3, params={"lr_scale": 2e-3 * (i + 1)},
            distributions=dist,
            user_attrs={"curves": {"val_mse": [0.5, 0.3], "online_loss": [0.1, 0.01],
                                   "prefix": [100, 400], "stage": ["grow", "tune"],
                                   "judged": [False, True]}},
        ))  # fmt: skip
    fig = plots.curves_figure(fg.curves_info(study.get_trials(), 0.5, "lr_scale"))
    prefix = [tr for tr in fig.data if tr.xaxis == "x3"]
    assert [list(tr.y) for tr in prefix] == [[100, 400], [100, 400]]
    # The stage of each epoch in the hover text; the epochs the plan's rules judge: squares.
    assert list(prefix[0].marker.symbol) == ["circle", "square"]
    assert list(prefix[0].customdata) == [" (grow)", " (tune)"] and "%{customdata}" in (
        prefix[0].hovertemplate
    )
    assert "prefix length T" in fig.layout.annotations[2].text
    assert "lr_scale 2.0e-03" in fig.data[0].name
    assert (
        len(plots.curves_figure(fg.curves_info(floor_study().get_trials(), 0.5, "lr")).data) == 4
    )


def test_curves_figure_pairs_both_panels_and_marks_where_a_trial_was_pruned() -> None:
    fig = plots.curves_figure(fg.curves_info(floor_study().get_trials(), 0.5, "lr"))
    assert len(fig.data) == 4  # two trials, two panels each
    val_complete, online_complete, val_pruned, online_pruned = fig.data
    assert val_pruned.legendgroup == online_pruned.legendgroup
    assert (val_pruned.showlegend, online_pruned.showlegend) == (True, False)
    assert "plateau (pruned)" in val_pruned.name
    assert list(val_pruned.marker.symbol) == ["circle", "x"]
    assert list(val_complete.marker.symbol) == ["circle", "circle"]
    assert (val_complete.xaxis, online_complete.xaxis) == ("x", "x2")


def test_criteria_figure_has_one_bar_per_measure_against_every_tier() -> None:
    info = fg.criteria_info(collect(floor_study()))
    fig = criteria_plots.criteria_figure(info)
    assert [tr.y[0] for tr in fig.data] == [info.train_mse, info.test_mse, info.ratio]
    limits = {(t.max_train, t.max_test, t.max_ratio) for t in TIERS}
    assert set(_lines(fig)) == {v for row in limits for v in row}
    table = criteria_plots.criteria_table(info)
    assert table.count("<tr") == 1 + len(TIERS) and "missed: train, test" in table


def test_at_the_floor_the_ratio_is_grey_and_not_meaningful() -> None:
    info = fg.criteria_info(collect(floor_study()))
    assert info.at_floor
    fig = criteria_plots.criteria_figure(info)
    train, test, ratio = fig.data
    assert ratio.marker.color == plots.FLOOR_COLOUR  # not green, though 1.0 < 1.2
    assert train.marker.color == test.marker.color == "#d62728"
    assert "not meaningful at the floor" in ratio.text[0]
    table = criteria_plots.criteria_table(info)
    assert table.count('<span class="na">1.00: not meaningful at the floor</span>') == len(TIERS)
    assert "met<" not in table
    for axis in (fig.layout.yaxis, fig.layout.yaxis2):  # full labels, no bare "5"
        assert "5" not in axis.ticktext and "2" not in axis.ticktext


def test_the_page_says_when_the_best_trials_are_tied_within_the_noise() -> None:
    page = hr.build(floor_sweep(4))
    assert '<p class="ties">All 4 finished trials (#0, #1, #2, #3)' in page
    assert "these differences are noise" in page
    assert page.index('class="ties"') < page.index("<section>")


# --- a clock sweep of 20 trials, many attempts each (issue 22) -------------------------------


def clock_sweep(n: int = 20) -> optuna.Study:
    """``n`` clock trials as a default clock sweep ends: seeds far apart, up to three attempts
    each (the first ones given up as stalled), stalled trials pruned, the rest in a tier."""
    study = optuna.create_study(study_name="clock-20")
    from sweep.rules.criteria import tier
    from sweep.settings import SweepConfig

    study.set_user_attr("config", SweepConfig(method="clock").identity())
    seed = optuna.distributions.IntDistribution(0, 2**31 - 1)
    verdicts = ("healthy", "stalled", "healthy", "plateau")
    for i in range(n):
        attempts = 1 + i % 3
        attempt = [a for a in range(attempts) for _ in range(4)]
        val = [0.9 / (1 + k % 4) / (1 + a) for k, a in enumerate(attempt)]
        verdict = verdicts[i % 4]
        best = len(val) if verdict != "stalled" else 3  # a stalled one delivers attempt 1
        v = val[best - 1] / (10 if verdict == "healthy" else 1)
        study.add_trial(create_trial(
            state=TrialState.PRUNED if verdict == "stalled" else TrialState.COMPLETE,
            value=v, params={"seed": 1 if i == 0 else 4000 + 37 * i}, distributions={"seed": seed},
            user_attrs={"verdict": verdict, "tier": tier(v, v),
                        "train_mse": v, "val_mse": v, "test_mse": v, "test_train_ratio": 1.0,
                        "best_epoch": best, "method": "clock",
                        "curves": {"val_mse": val, "online_loss": [x / 2 for x in val],
                                   "prefix": [100 * (1 + k % 4) for k in range(len(val))],
                                   "stage": ["grow"] * len(val), "attempt": attempt,
                                   "restarted": [k % 4 == 3 and a < attempts - 1
                                                 for k, a in enumerate(attempt)]}},
        ))  # fmt: skip
    return study


def test_a_clock_trials_given_up_attempts_are_faint_and_its_delivered_one_full() -> None:
    info = fg.curves_info(clock_sweep().get_trials(), 0.5, "seed")
    third = info.curves[2]  # three attempts, the last delivered
    assert third.delivered_attempt == 2
    assert fg.delivered_mask(third) == (False,) * 8 + (True,) * 4
    stalled = info.curves[1]  # two attempts, the first (epoch 3) delivered
    assert fg.delivered_mask(stalled) == (True,) * 4 + (False,) * 4
    fig = plots.curves_figure(info)
    val = [tr for tr in fig.data if tr.xaxis == "x" and tr.legendgroup.startswith("#2 ")]
    (full,) = [tr for tr in val if tr.opacity == 1]
    (faint,) = [tr for tr in val if tr.opacity < 1]
    assert [y is not None for y in full.y] == list(fg.delivered_mask(third))
    assert [y is not None for y in faint.y] == [not d for d in fg.delivered_mask(third)]
    assert full.showlegend and not faint.showlegend  # one legend entry toggles both
    assert "attempt 1, given up" in faint.customdata[0]
    assert "faint: attempts given up" in fig.layout.legend.title.text
    # One attempt only: one trace per panel, nothing faint.
    assert [tr.opacity for tr in fig.data if tr.legendgroup.startswith("#0 ")] == [1.0] * 3


def test_seeds_are_integers_in_the_legend_and_categories_ordered_best_first() -> None:
    study = clock_sweep()
    curves = plots.curves_figure(fg.curves_info(study.get_trials(), 0.5, "seed"))
    names = [tr.name for tr in curves.data if tr.showlegend]
    assert names[0].startswith("#0 seed 1: ") and any(n.startswith("#1 seed 4037: ")
                                                      for n in names)  # fmt: skip
    assert not any("e+" in n for n in names)
    info = fg.sweep_info(collect(study))
    assert info.categorical
    fig = plots.sweep_figure(info)
    assert fig.layout.xaxis.type == "category"
    order = list(fig.layout.xaxis.categoryarray)
    by_val = sorted(study.trials, key=lambda t: (t.value, t.number))
    assert order == [str(t.params["seed"]) for t in by_val]
    assert "best first" in fig.layout.xaxis.title.text
    assert "category of its own" in plots.sweep_intro(info)


def test_every_verdict_has_its_own_colour_stalled_included() -> None:
    from sweep.rules.divergence import ACTIONS

    assert set(ACTIONS) <= set(plots.VERDICT_COLOURS)
    colours = list(plots.VERDICT_COLOURS.values())
    assert len(set(colours)) == len(colours) and plots.FLOOR_COLOUR not in colours
    fig = plots.sweep_figure(fg.sweep_info(collect(clock_sweep())))
    stalled = [tr for tr in fig.data if tr.name.startswith("stalled")]
    assert stalled and stalled[0].marker.color == plots.VERDICT_COLOURS["stalled"]
