"""The sweep as one self-contained HTML page: plotly.js is embedded, nothing is fetched.

The data comes from `sweep.figures`; this module only draws it and lays out the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import optuna
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from sweep import figures as fg
from sweep.report import Summary, collect

VERDICT_COLOURS = {
    "healthy": "#2ca02c",
    "plateau": "#ff7f0e",
    "diverging": "#d62728",
    "jump": "#9467bd",
    "oscillating": "#8c564b",
    "non_finite": "#000000",
}
TIER_SYMBOLS = {"excellent": "star", "good": "diamond", "minimum": "square"}
TIER_DASH = {"excellent": "dot", "good": "dash", "minimum": "dashdot"}
FLOOR_COLOUR = "#7f7f7f"
TRIAL_COLOURS = qualitative.D3
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


class Section(NamedTuple):
    title: str
    intro: str
    body: str


def _hline(
    fig: go.Figure,
    y: float,
    text: str,
    log: bool,
    dash: str = "solid",
    colour: str = "#555",
    right: bool = False,
    **where: int,
) -> None:
    """A labelled horizontal line. The label is placed by hand: plotly's own hline annotation
    takes y as an axis coordinate, which on a log axis means 10**y."""
    width = 2 if colour == FLOOR_COLOUR else 1
    fig.add_hline(y=y, line={"dash": dash, "color": colour, "width": width}, **where)
    fig.add_annotation(
        x=1 if right else 0,
        xref="x domain",
        y=math.log10(y) if log else y,
        text=text,
        showarrow=False,
        xanchor="right" if right else "left",
        yanchor="bottom",
        font={"size": 10, "color": colour},
        **where,
    )


def _floor(fig: go.Figure, floor: float, log: bool = True, **where: int) -> None:
    _hline(fig, floor, f"predict zero: MSE {floor}", log, colour=FLOOR_COLOUR, **where)


def sweep_figure(info: fg.SweepInfo) -> go.Figure:
    fig = go.Figure()
    for verdict in sorted({p.verdict or "none" for p in info.points}):
        pts = [p for p in info.points if (p.verdict or "none") == verdict]
        fig.add_scatter(
            x=[p.lr for p in pts],
            y=[p.val_mse for p in pts],
            mode="markers",
            name=verdict,
            marker={
                "size": 11,
                "color": VERDICT_COLOURS.get(verdict, FLOOR_COLOUR),
                "symbol": [TIER_SYMBOLS.get(p.tier or "", "circle") for p in pts],
                "line": {"width": 1, "color": "white"},
            },
            text=[f"trial {p.number} ({p.state.lower()})<br>tier {p.tier}" for p in pts],
            hovertemplate="%{text}<br>lr %{x:.2e}<br>val MSE %{y:.4f}",
        )
    for t in info.tiers:
        _hline(
            fig,
            t.max_test,
            f"{t.name}: test MSE < {t.max_test}",
            True,
            TIER_DASH.get(t.name, "dash"),
            right=True,
        )
    fig.add_hrect(
        y0=info.floor_from, y1=info.floor, fillcolor=FLOOR_COLOUR, opacity=0.2, line_width=0
    )
    _floor(fig, info.floor)
    values = [p.val_mse for p in info.points if p.val_mse > 0]
    lo = min(values + [min(t.max_test for t in info.tiers)])
    hi = max(values + [info.floor])
    fig.update_xaxes(type="log", title="initial learning rate (log)", tickformat=".1e")
    fig.update_yaxes(
        type="log",
        title="final honest validation MSE (log)",
        range=[math.log10(lo) - 0.3, math.log10(hi) + 0.3],
    )
    fig.update_layout(legend_title="verdict", showlegend=True, height=460, margin={"t": 30})
    return fig


def curves_figure(info: fg.CurvesInfo) -> go.Figure:
    fig = make_subplots(
        1,
        2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=(
            "honest validation MSE (frozen weights, whole set)",
            "online training loss (mean while the weights move)",
        ),
    )
    for i, c in enumerate(info.curves):
        colour = TRIAL_COLOURS[i % len(TRIAL_COLOURS)]
        pruned = c.state == "PRUNED"
        lr = "-" if c.lr is None else f"{c.lr:.1e}"
        name = f"#{c.number} lr {lr}: {c.verdict or '-'}" + (" (pruned)" if pruned else "")
        last = len(c.epochs) - 1
        for col, ys in ((1, c.val_mse), (2, c.online_loss)):
            fig.add_scatter(
                x=c.epochs,
                y=ys,
                name=name,
                legendgroup=name,
                showlegend=col == 1,
                mode="lines+markers",
                line={"color": colour},
                marker={
                    "size": [12 if pruned and k == last else 4 for k in range(last + 1)],
                    "symbol": ["x" if pruned and k == last else "circle" for k in range(last + 1)],
                },
                row=1,
                col=col,
            )
    for col in (1, 2):
        _floor(fig, info.floor, row=1, col=col)
    longest = max((len(c.epochs) for c in info.curves), default=0)
    fig.update_xaxes(title="epoch", dtick=1 if longest <= 12 else None)
    fig.update_yaxes(type="log")
    fig.update_yaxes(title="MSE (log)", row=1, col=1)
    fig.update_layout(height=480, legend_title="trial (x: pruned here)", margin={"t": 40})
    return fig


def criteria_figure(info: fg.CriteriaInfo) -> go.Figure:
    fig = make_subplots(
        1, 3, subplot_titles=("train MSE (log)", "test MSE (log)", "test / train ratio")
    )
    measures = (
        (info.train_mse, "max_train"),
        (info.test_mse, "max_test"),
        (info.ratio, "max_ratio"),
    )
    for col, (value, limit) in enumerate(measures, start=1):
        ok = value < getattr(info.standing[-1].tier, limit)  # under the loosest tier's limit
        fig.add_bar(
            x=[f"trial #{info.number}"],
            y=[value if math.isfinite(value) else None],
            showlegend=False,
            row=1,
            col=col,
            width=0.4,
            marker_color="#2ca02c" if ok else "#d62728",
            text=[f"{value:.4g}"],
            textposition="outside",
        )
        for g in info.standing:
            _hline(
                fig,
                getattr(g.tier, limit),
                f"{g.name} < {getattr(g.tier, limit)}",
                col < 3,
                TIER_DASH.get(g.name, "dash"),
                right=True,
                row=1,
                col=col,
            )
        scale = [
            v
            for v in (value, *(getattr(g.tier, limit) for g in info.standing))
            if 0 < v < math.inf
        ]
        top = max(scale)
        if col < 3:
            bottom = min(scale)
            fig.update_yaxes(
                type="log", row=1, col=col, range=[math.log10(bottom) - 0.3, math.log10(top) + 0.4]
            )
        else:
            fig.update_yaxes(range=[0, top * 1.25], row=1, col=col)
    fig.update_layout(height=400, margin={"t": 40})
    return fig


def criteria_table(info: fg.CriteriaInfo) -> str:
    head = "<tr><th>tier</th><th>train MSE</th><th>test MSE</th><th>ratio</th><th></th></tr>"
    rows = []
    for g in info.standing:
        t = g.tier
        cells = [
            f"{info.train_mse:.4f} &lt; {t.max_train} <small>({g.train_gap:+.4f})</small>",
            f"{info.test_mse:.4f} &lt; {t.max_test} <small>({g.test_gap:+.4f})</small>",
            f"{info.ratio:.2f} &lt; {t.max_ratio} <small>({g.ratio_gap:+.2f})</small>",
            "met" if g.met else "missed: " + ", ".join(g.failing),
        ]
        tds = "".join(f"<td>{c}</td>" for c in cells)
        rows.append(f'<tr class="{"met" if g.met else "missed"}"><th>{t.name}</th>{tds}</tr>')
    return f'<table class="criteria">{head}{"".join(rows)}</table>'


def focus_figure(info: fg.PredictionInfo) -> go.Figure:
    p = info.focus
    fig = go.Figure()
    fig.add_scatter(
        x=p.time,
        y=info.mixed,
        name="mixed signal S (input)",
        mode="lines",
        line={"color": "#bbbbbb", "width": 1},
        opacity=0.6,
    )
    fig.add_scatter(
        x=p.time,
        y=p.target,
        name=f"target sin(2π·{p.freq:g}·t)",
        mode="lines",
        line={"color": "#1f77b4", "width": 2},
    )
    fig.add_scatter(
        x=p.time,
        y=p.output,
        name=f"model output, trial #{info.number}",
        mode="markers",
        marker={"color": "#d62728", "size": 3},
    )
    fig.update_xaxes(title="time (s)")
    fig.update_layout(
        height=420,
        margin={"t": 50},
        title=f"{p.freq:g} Hz, first {info.window_s:g} s of the test set",
    )
    return fig


def panels_figure(info: fg.PredictionInfo) -> go.Figure:
    rows = math.ceil(len(info.panels) / 2)
    fig = make_subplots(
        rows,
        2,
        subplot_titles=[f"{p.freq:g} Hz" for p in info.panels],
        vertical_spacing=0.12,
        horizontal_spacing=0.06,
    )
    for i, p in enumerate(info.panels):
        where = {"row": i // 2 + 1, "col": i % 2 + 1}
        fig.add_scatter(
            x=p.time,
            y=p.target,
            name="target",
            legendgroup="target",
            showlegend=i == 0,
            mode="lines",
            line={"color": "#1f77b4"},
            **where,
        )
        fig.add_scatter(
            x=p.time,
            y=p.output,
            name="model output",
            legendgroup="output",
            showlegend=i == 0,
            mode="markers",
            marker={"color": "#d62728", "size": 2},
            **where,
        )
    fig.update_xaxes(title="time (s)", row=rows)
    fig.update_layout(height=300 * rows + 60, margin={"t": 40})
    return fig


def per_freq_figure(info: fg.PerFreqInfo) -> go.Figure:
    names = [f"{f:g} Hz" for f in info.freqs]
    fig = go.Figure()
    fig.add_bar(
        x=names,
        y=info.mse,
        name=f"trial #{info.number}",
        marker_color="#1f77b4",
        text=[f"{v:.4f}" for v in info.mse],
        textposition="outside",
    )
    fig.add_bar(
        x=names,
        y=info.zero_mse,
        name="predicting 0",
        marker_color=FLOOR_COLOUR,
        opacity=0.5,
        text=[f"{v:.3f}" for v in info.zero_mse],
        textposition="outside",
    )
    fig.update_yaxes(title="test MSE")
    fig.update_layout(
        height=400, barmode="group", margin={"t": 50}, title=f"overall test MSE {info.overall:.4f}"
    )
    return fig


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
.missing { color: #a00; font-style: italic; }
"""


def page(summary: Summary, sections: Sequence[Section]) -> str:
    b = summary.best
    head = f"{len(summary.rows)} trials" + (
        "; no trial has finished yet."
        if b is None
        else f"; best by honest validation MSE: trial #{b.number} (lr {b.lr or math.nan:.2e}, "
        f"{b.state.lower()}, val MSE {b.val_mse:.4f}, tier {b.tier})."
    )
    notes = "".join(_p(n) for n in summary.notes)
    body = "".join(
        f'<section><h2>{html.escape(s.title)}</h2><p class="intro">{html.escape(s.intro)}</p>'
        f"{s.body}</section>"
        for s in sections
    )
    title = html.escape(f"LSTM sweep report: study {summary.study_name!r}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{title}</h1><p>{html.escape(head)}</p>"
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
    from model.checkpoint import CheckpointError
    from sweep.artifacts import ArtifactError

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
            "samples (0.5 over whole periods).",
            _div(per_freq_figure(per), "per-freq"),
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
    if "config" in study.user_attrs:
        fg.freq_index(freq, fg.data_config(study)[0])  # a wrong --freq fails before any work
    crit = fg.criteria_info(summary)
    sections = [
        Section(
            "1. The sweep",
            "Each finished trial's learning rate against its final honest "
            "validation MSE; colour: the divergence verdict, shape: the tier met (circle: "
            "none). Dashed lines: each tier's test-MSE limit; the grey band is the "
            "predict-zero floor.",
            _div(sweep_figure(fg.sweep_info(summary)), "sweep"),
        ),
        Section(
            "2. Learning curves",
            "Left: the honest validation MSE after each epoch. Right: "
            "the online training loss, taken while the weights follow the target step by "
            "step; it is not the model's MSE, which is why the two panels differ.",
            _div(curves_figure(fg.curves_info(study.get_trials(deepcopy=False))), "curves"),
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build(study, trial, freq, base), encoding="utf-8")
    return path
