"""Drawing the best trial against the plan's success criteria: bars per measure and tier, and
the table beside them (the data comes from ``sweep.report.figures.criteria_info``)."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sweep.report import axes as ax
from sweep.report import figures as fg
from sweep.report.plots import FLOOR_COLOUR, TIER_DASH, hline
from sweep.rules.criteria import RATIO_AT_FLOOR, mse_text


def criteria_figure(info: fg.CriteriaInfo) -> go.Figure:
    ratio = "test / train ratio" + (f" ({RATIO_AT_FLOOR})" if info.at_floor else "")
    fig = make_subplots(1, 3, subplot_titles=("train MSE (log)", "test MSE (log)", ratio))
    measures = (
        (info.train_mse, "max_train"),
        (info.test_mse, "max_test"),
        (info.ratio, "max_ratio"),
    )
    for col, (value, limit) in enumerate(measures, start=1):
        ok = value < getattr(info.standing[-1].tier, limit)  # under the loosest tier's limit
        moot = info.at_floor and limit == "max_ratio"
        colour = FLOOR_COLOUR if moot else "#2ca02c" if ok else "#d62728"
        fig.add_bar(
            x=[f"trial #{info.number}"],
            y=[value if math.isfinite(value) else None],
            showlegend=False,
            row=1,
            col=col,
            width=0.4,
            marker_color=colour,
            text=[f"{value:.4g}: {RATIO_AT_FLOOR}" if moot else f"{value:.4g}"],
            textposition="outside",
        )
        for g in info.standing:
            hline(
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
            lo, hi = math.log10(min(scale)) - 0.3, math.log10(top) + 0.4
            axis = ax.YAxis(ax.LOG, (lo, hi), ax.log_ticks(10**lo, 10**hi))
            fig.update_yaxes(type="log", range=list(axis.range), tickvals=list(axis.tickvals),
                             ticktext=list(axis.ticktext), row=1, col=col)  # fmt: skip
        else:
            fig.update_yaxes(range=[0, top * 1.25], row=1, col=col)
    fig.update_layout(height=400, margin={"t": 40})
    return fig


def criteria_table(info: fg.CriteriaInfo) -> str:
    head = "<tr><th>tier</th><th>train MSE</th><th>test MSE</th><th>ratio</th><th></th></tr>"
    rows = []
    for g in info.standing:
        t = g.tier
        ratio = f"{info.ratio:.2f} &lt; {t.max_ratio} <small>({g.ratio_gap:+.2f})</small>"
        if info.at_floor:  # greyed: ~1 only because both MSEs are ~0.5
            ratio = f'<span class="na">{info.ratio:.2f}: {RATIO_AT_FLOOR}</span>'
        cells = [
            f"{mse_text(info.train_mse)} &lt; {t.max_train} <small>({g.train_gap:+.5f})</small>",
            f"{mse_text(info.test_mse)} &lt; {t.max_test} <small>({g.test_gap:+.5f})</small>",
            ratio,
            "met" if g.met else "missed: " + ", ".join(g.failing),
        ]
        tds = "".join(f"<td>{c}</td>" for c in cells)
        rows.append(f'<tr class="{"met" if g.met else "missed"}"><th>{t.name}</th>{tds}</tr>')
    return f'<table class="criteria">{head}{"".join(rows)}</table>'
