"""The sweep as one self-contained HTML page: plotly.js is embedded, nothing is fetched.

The data comes from `sweep.report.figures`, the figures from `sweep.report.plots`; this module
lays out the
page.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import optuna
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from model import registry
from model.checkpoint import CheckpointError, atomic_write
from sweep.identity import stored_data, stored_identity
from sweep.report import figures as fg
from sweep.report.artifacts import ArtifactError
from sweep.report.criteria_plots import criteria_figure, criteria_table
from sweep.report.model_plots import (
    error_spectrum_figure,
    focus_figure,
    panels_figure,
    per_freq_figure,
)
from sweep.report.plots import (
    PLOT_CONFIG,
    curves_figure,
    sweep_figure,
    sweep_intro,
)
from sweep.report.spectrum import error_spectrum
from sweep.report.summary import FINISHED_NAMES, Summary, axis_text, collect, ties_text
from sweep.rules.criteria import mse_text


class Section(NamedTuple):
    title: str
    intro: str
    body: str


def _div(fig: go.Figure, name: str) -> str:
    # A fixed div id keeps the page byte-identical for the same study, so re-attaching it as
    # an artifact is recognised as the same file.
    return fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=f"fig-{name}", config=PLOT_CONFIG
    )


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1300px; margin: 1em auto; color: #222;
       padding: 0 1em; }
.notes { background: #fff6e0; border-left: 5px solid #f0a500; padding: 0.5em 1em; }
.notes p { margin: 0.5em 0; }
section { margin-top: 2em; border-top: 1px solid #ddd; }
.intro { color: #555; }
table.criteria { border-collapse: collapse; margin: 1em 0; }
table.criteria td, table.criteria th { border: 1px solid #ccc; padding: 0.3em 0.8em; }
tr.met th { color: #2ca02c; } tr.missed th { color: #d62728; }
span.na { color: #7f7f7f; font-style: italic; }
.ties { font-weight: bold; }
.missing { color: #a00; font-style: italic; }
/* A figure keeps a width its panels' titles and legend fit in; on a narrower screen (a phone)
   it scrolls sideways inside its section, and the page itself never does. */
section > div, table.criteria { overflow-x: auto; }
table.criteria { display: block; max-width: 100%; }
.plotly-graph-div { min-width: 640px; }
#fig-curves { min-width: 1100px; }
"""


def page(summary: Summary, sections: Sequence[Section]) -> str:
    b = summary.best
    head = html.escape(
        f"{len(summary.rows)} trials"
        + (
            "; no trial has finished yet."
            if b is None
            else f"; best by honest validation MSE: trial #{b.number} "
            f"({axis_text(b)}, {b.state.lower()}, val MSE {mse_text(b.val_mse)}, "
            f"tier {b.tier})."
        )
    )
    if b is not None and summary.ties is not None:
        scored = sum(r.val_mse is not None and r.state in FINISHED_NAMES for r in summary.rows)
        head += f'</p><p class="ties">{html.escape(ties_text(summary.ties, scored))}'
    notes = "".join(_p(n) for n in summary.notes)
    body = "".join(
        f'<section><h2>{html.escape(s.title)}</h2><p class="intro">{html.escape(s.intro)}</p>'
        f"{s.body}</section>"
        for s in sections
    )
    title = html.escape(f"LSTM sweep report: study {summary.study_name!r}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title>"
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{title}</h1><p>{head}</p>"
        + (f'<div class="notes"><h2>What this means</h2>{notes}</div>' if notes else "")
        + f"{body}</body></html>\n"
    )


def _missing(text: str) -> str:
    return f'<p class="missing">{html.escape(text)}</p>'


def model_sections(
    study: optuna.Study, number: int | None, freq: float, base: Path | None, strict: bool
) -> list[Section]:
    """Sections (4) and (5) for trial ``number``; when not ``strict`` (the trial was not asked
    for by name), a model that cannot be loaded is reported in the page instead of raising."""
    four = "4. The model's output on the test set"
    five = "5. Test MSE per frequency"
    if number is None:
        return [Section(four, "", _missing("No finished trial yet.")), Section(five, "", "")]
    try:
        outputs, data, config = fg.trial_outputs(study, number, base)
    except (ArtifactError, CheckpointError, ValueError) as exc:
        if strict:
            raise
        return [
            Section(four, "", _missing(f"Cannot load trial {number}'s model: {exc}")),
            Section(five, "", ""),
        ]
    pred = fg.prediction_info(number, outputs, data, config, freq)
    per = fg.per_freq_info(number, outputs, data, config)
    spectrum = error_spectrum(number, outputs, data, config)
    return [
        Section(
            four,
            f"Trial #{number}'s best checkpoint, run over the test set with the state "
            "reset at each block start. Lines: the clean target; dots: the model's output; "
            "grey: the noisy mixed signal S it was given.",
            _div(focus_figure(pred), "focus") + _div(panels_figure(pred), "panels"),
        ),
        Section(
            five,
            "Each frequency's test MSE beside what predicting 0 scores on the same "
            "samples (0.5 over whole periods). Below: where each block's error lies in "
            "frequency. Error at the block's own frequency is a wrong phase or amplitude; "
            "error at other frequencies is a distorted wave (a clock's slow oscillator that "
            "is not a clean sine).",
            _div(per_freq_figure(per), "per-freq")
            + _div(error_spectrum_figure(spectrum), "error-spectrum"),
        ),
    ]


def build(
    study: optuna.Study,
    trial: int | None = None,
    freq: float = fg.DEFAULT_FREQ_HZ,
    base: Path | None = None,
) -> str:
    """The whole page. ``trial``: whose model to draw in (4) and (5); the best by default."""
    summary = collect(study)
    trials = study.get_trials(deepcopy=False)
    if stored_identity(study):
        fg.freq_index(freq, stored_data(study)[0])  # a wrong --freq fails before any work
    crit = fg.criteria_info(summary)
    sweep = fg.sweep_info(summary)
    axis = registry.get(summary.method).reporting.axis
    sections = [
        Section("1. The sweep", sweep_intro(sweep), _div(sweep_figure(sweep), "sweep")),
        Section(
            "2. Learning curves",
            "Left: the honest validation MSE after each epoch. Right: "
            "the online training loss, taken while the weights follow the target step by "
            "step; it is not the model's MSE, which is why the two panels differ.",
            _div(curves_figure(fg.curves_info(trials, summary.floor, axis)), "curves"),
        ),
        Section(
            "3. The best trial against the success criteria",
            "All three measures must be "
            "under a tier's limits (gap = value - limit, must be below 0).",
            _missing("No finished trial yet.")
            if crit is None
            else criteria_table(crit) + _div(criteria_figure(crit), "criteria"),
        ),
    ]
    best = summary.best.number if summary.best is not None else None
    number = trial if trial is not None else best
    sections += model_sections(study, number, freq, base, strict=trial is not None)
    return page(summary, sections)


def write_report(
    study: optuna.Study,
    path: Path,
    trial: int | None = None,
    freq: float = fg.DEFAULT_FREQ_HZ,
    base: Path | None = None,
) -> Path:
    path = Path(path)
    # Whole or not at all: a Ctrl-C or a full disk mid-write left half a page.
    atomic_write(build(study, trial, freq, base).encode("utf-8"), path)
    return path
