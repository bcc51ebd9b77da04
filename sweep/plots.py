"""Drawing the report's figures with plotly. The data comes from `sweep.figures` (pure, tested
there); this module only turns it into figures. `sweep.html_report` lays them out in a page."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from sweep import figures as fg

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
    _hline(fig, floor, f"floor (no clock): MSE {floor:.4g}", log, colour=FLOOR_COLOUR, **where)


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
    fig.update_xaxes(type="log", title=info.x_title, tickformat=".1e")
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
