"""Drawing the delivered model: its output against the targets on the test set, and its MSE
per frequency (the data comes from ``sweep.report.figures``)."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sweep.report import figures as fg
from sweep.report.plots import FLOOR_COLOUR
from sweep.report.spectrum import ErrorSpectrumInfo
from sweep.rules.criteria import mse_text


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
        text=[mse_text(v) for v in info.mse],
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
        height=400,
        barmode="group",
        margin={"t": 50},
        title=f"overall test MSE {mse_text(info.overall)}",
    )
    return fig


def error_spectrum_figure(info: ErrorSpectrumInfo) -> go.Figure:
    """One bar group per 1 Hz band: what share of each block's error power lies there."""
    fig = go.Figure()
    for f, share, mse in zip(info.freqs, info.share, info.mse, strict=True):
        fig.add_bar(
            x=list(info.bands),
            y=[100 * v for v in share],
            name=f"{f:g} Hz block (MSE {mse_text(mse)})",
            hovertemplate="%{y:.1f}% of the error power in the %{x} Hz band",
        )
    fig.update_xaxes(title="frequency band of the error (Hz)", dtick=1)
    fig.update_yaxes(title="share of the block's error power (%)")
    title = f"trial #{info.number}: where each block's error lies in frequency"
    fig.update_layout(height=400, barmode="group", margin={"t": 50}, title=title)
    return fig
