"""Drawing the report's figures with plotly. The data comes from `sweep.report.figures` (pure,
tested
there); this module only turns it into figures. `sweep.report.html` lays them out in a page."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from sweep.report import axes as ax
from sweep.report import figures as fg
from sweep.rules.divergence import STALLED

VERDICT_COLOURS = {
    "healthy": "#2ca02c",
    "plateau": "#ff7f0e",
    "diverging": "#d62728",
    "jump": "#9467bd",
    "oscillating": "#8c564b",
    "non_finite": "#000000",
    # Not the floor's grey: a stalled clock trial is a seed that did not grow, not a floor.
    STALLED: "#17becf",
}
TIER_SYMBOLS = {"excellent": "star", "good": "diamond", "minimum": "square"}
TIER_DASH = {"excellent": "dot", "good": "dash", "minimum": "dashdot"}
FLOOR_COLOUR = "#7f7f7f"
NOISE_COLOUR = "#1f77b4"
#: The learning curves' colours: a sequential scale, stopped before its palest end.
CURVE_SCALE = "Viridis"
CURVE_SCALE_END = 0.85
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def hline(
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
    hline(fig, floor, f"floor (no clock): MSE {floor:.4g}", log, colour=FLOOR_COLOUR, **where)


def sweep_groups(info: fg.SweepInfo) -> dict[tuple[str, str], list[fg.SweepPoint]]:
    """The points by the mark they are drawn with: (verdict, tier symbol), one legend entry
    each, so the legend lists exactly the colours and shapes on the plot."""
    groups: dict[tuple[str, str], list[fg.SweepPoint]] = {}
    for p in info.points:
        key = (p.verdict or "none", TIER_SYMBOLS.get(p.tier or "", "circle"))
        groups.setdefault(key, []).append(p)
    return dict(sorted(groups.items()))


def sweep_axis(info: fg.SweepInfo) -> ax.YAxis:
    tiers = [t.max_test for t in info.tiers]
    return ax.mse_axis([p.val_mse for p in info.points], info.floor, info.floor_from, tiers)


def _apply(fig: go.Figure, axis: ax.YAxis, title: str, **where: int) -> None:
    if axis.type == ax.LOG:
        ticks = {"tickvals": list(axis.tickvals), "ticktext": list(axis.ticktext)}
        fig.update_yaxes(type="log", range=list(axis.range), title=f"{title} (log)", **ticks,
                         **where)  # fmt: skip
    else:
        fig.update_yaxes(type="linear", range=list(axis.range), tickformat=axis.tickformat,
                         title=f"{title} (linear, zoomed)", **where)  # fmt: skip


def sweep_intro(info: fg.SweepInfo) -> str:
    """The words above the sweep figure, saying only what it draws."""
    groups = sweep_groups(info)
    axis = sweep_axis(info)
    words = [f"Each finished trial's {info.x_title.removesuffix(' (log)')} against its final "
             "honest validation MSE; colour: the divergence verdict"]  # fmt: skip
    if {s for _, s in groups} != {"circle"}:
        words.append(", shape: the tier met (circle: none)")
    if info.categorical:
        words.append(". Each seed is a category of its own (a seed is no more like the next "
                     "one than any other), ordered best first")  # fmt: skip
    words.append(". The grey band is the predict-zero floor.")
    if axis.type == ax.LOG:
        words.append(" Dashed lines: each tier's test-MSE limit.")
    else:
        words.append(" Every trial sits within a few percent of the others, so the axis is "
                     "linear and zoomed onto their differences.")  # fmt: skip
        if info.noise:
            words.append(" The blue band: within the noise level of the best trial.")
    return "".join(words)


def sweep_figure(info: fg.SweepInfo) -> go.Figure:
    fig = go.Figure()
    groups = sweep_groups(info)
    shapes = {symbol for _, symbol in groups}
    for (verdict, symbol), pts in groups.items():
        tier = next((t for t, s in TIER_SYMBOLS.items() if s == symbol), "no tier met")
        fig.add_scatter(
            x=[fg.axis_label(p.x) for p in pts] if info.categorical else [p.x for p in pts],
            y=[p.val_mse for p in pts],
            mode="markers",
            name=verdict if shapes == {"circle"} else f"{verdict}, {tier}",
            marker={
                "size": 11,
                "color": VERDICT_COLOURS.get(verdict, FLOOR_COLOUR),
                "symbol": symbol,
                "line": {"width": 1, "color": "white"},
            },
            text=[f"trial {p.number} ({p.state.lower()})<br>tier {p.tier}" for p in pts],
            hovertemplate="%{text}<br>"
            + ("x %{x}" if info.categorical else "x %{x:.2e}")
            + "<br>val MSE %{y:.5f}<extra></extra>",
        )
    axis = sweep_axis(info)
    log = axis.type == ax.LOG
    for t in info.tiers:
        if axis.contains(t.max_test):
            dash = TIER_DASH.get(t.name, "dash")
            hline(fig, t.max_test, f"{t.name}: test MSE < {t.max_test}", log, dash, right=True)
    fig.add_hrect(
        y0=info.floor_from, y1=info.floor, fillcolor=FLOOR_COLOUR, opacity=0.2, line_width=0
    )
    if axis.contains(info.floor):
        _floor(fig, info.floor, log)
    if not log:
        _zoom_notes(fig, info)
    if info.categorical:
        fig.update_xaxes(type="category", categoryorder="array",
                         categoryarray=list(info.categories),
                         title=f"{info.x_title} (best first)")  # fmt: skip
    elif info.x_title.endswith("(log)"):
        fig.update_xaxes(type="log", title=info.x_title, tickformat=".1e")
    else:
        fig.update_xaxes(type="linear", title=info.x_title)
    _apply(fig, axis, "final honest validation MSE")
    title = "verdict" if shapes == {"circle"} else "verdict, tier"
    fig.update_layout(legend_title=title, showlegend=True, height=460, margin={"t": 30})
    return fig


def _zoom_notes(fig: go.Figure, info: fg.SweepInfo) -> None:
    """On a zoomed axis: the band within noise of the best, and where the tiers went."""
    if info.best is not None and info.noise:
        fig.add_hrect(y0=info.best, y1=info.best + info.noise, fillcolor=NOISE_COLOUR,
                      opacity=0.15, line_width=0)  # fmt: skip
        fig.add_annotation(x=0.5, xref="x domain", y=info.best + info.noise, yanchor="bottom",
                           text=f"within noise of the best ({info.noise:.2g})",
                           showarrow=False, font={"size": 10, "color": NOISE_COLOUR})  # fmt: skip
    loosest = max(t.max_test for t in info.tiers)
    fig.add_annotation(x=0, xref="x domain", y=0, yref="y domain", yanchor="bottom",
                       xanchor="left", showarrow=False, font={"size": 10, "color": "#555"},
                       text=f"axis zoomed onto the trials: the tier limits (test MSE < "
                       f"{loosest} and below) lie far under it")  # fmt: skip


def curve_colours(curves: Sequence[fg.Curve]) -> dict[int, str]:
    """One colour per trial along a sequential scale, ordered by the swept value (then trial
    number): distinct for any number of trials, and neighbours in colour are neighbours on the
    sweep axis."""
    order = sorted(curves, key=lambda c: (c.x is None, c.x or 0.0, c.number))
    n = len(order)
    positions = [CURVE_SCALE_END * i / (n - 1) if n > 1 else 0.0 for i in range(n)]
    colours = sample_colorscale(CURVE_SCALE, positions) if n else []
    return {c.number: colour for c, colour in zip(order, colours, strict=True)}


def _panel_axis(values: list[float | None], info: fg.CurvesInfo) -> ax.YAxis:
    if not ax.usable(values):
        return ax.logarithmic([info.floor])
    if ax.near_each_other(values, info.floor_from):
        return ax.zoomed(values, info.floor, info.floor_from)
    return ax.logarithmic(values, margin=0.1)


def _mark(c: fg.Curve, k: int, cut: bool) -> str:
    """x where a pruned trial stopped; squares on the epochs the plan's rules judge, where a
    trial records which (a growing prefix's epochs are circles)."""
    if cut:
        return "x"
    return "square" if k < len(c.judged) and c.judged[k] else "circle"


#: Subplot titles: short, with their gloss on a second, smaller line, so that three side by side
#: fit their panels at 1400 px (the long one-line titles ran into each other).
CURVE_TITLES = (
    "honest validation MSE<br><sup>frozen weights, whole set</sup>",
    "online training loss<br><sup>mean while the weights move</sup>",
)
PREFIX_TITLE = "prefix length T<br><sup>squares: epochs the plan's rules judge</sup>"
#: Attempts a trial gave up (their weights were not delivered): drawn faint, behind.
FADED_OPACITY = 0.25


def curves_figure(info: fg.CurvesInfo) -> go.Figure:
    grows = any(c.prefix for c in info.curves)
    titles = CURVE_TITLES + ((PREFIX_TITLE,) if grows else ())
    fig = make_subplots(1, len(titles), horizontal_spacing=0.08, subplot_titles=titles)
    fig.update_annotations(font_size=14)  # the titles only: nothing else is drawn yet
    colours = curve_colours(info.curves)
    rank = {n: i for i, n in enumerate(colours)}
    for c in info.curves:
        pruned = c.state == "PRUNED"
        name = f"#{c.number} {info.x_name} {fg.axis_label(c.x)}: {c.verdict or '-'}" + (
            " (pruned)" if pruned else ""
        )
        last = len(c.epochs) - 1
        delivered = fg.delivered_mask(c)
        panels = (c.val_mse, c.online_loss) + ((c.prefix,) if grows else ())
        for col, ys in enumerate(panels, start=1):
            ys = list(ys) or [None] * len(c.epochs)
            for kept in (False, True) if not all(delivered) else (True,):
                # The delivered attempt in full colour; the attempts given up faint, behind
                # it (no line joins two attempts: each starts from new weights).
                part = [y if d == kept else None for y, d in zip(ys, delivered, strict=True)]
                fig.add_scatter(
                    x=c.epochs,
                    y=part,
                    name=name,
                    legendgroup=name,
                    legendrank=rank[c.number],
                    showlegend=col == 1 and kept,
                    mode="lines+markers",
                    opacity=1.0 if kept else FADED_OPACITY,
                    line={"color": colours[c.number], "width": 2 if kept else 1},
                    marker={
                        "size": [
                            12 if pruned and k == last else (4 if kept else 2)
                            for k in range(last + 1)
                        ],  # fmt: skip
                        "symbol": [_mark(c, k, pruned and k == last) for k in range(last + 1)],
                    },
                    customdata=[_epoch_note(c, k) for k in range(last + 1)],
                    hovertemplate=f"{name}<br>epoch %{{x}}%{{customdata}}: %{{y:.5g}}"
                    "<extra></extra>",
                    row=1,
                    col=col,
                )
    for col, key in ((1, "val_mse"), (2, "online_loss")):
        axis = _panel_axis([v for c in info.curves for v in getattr(c, key)], info)
        if axis.contains(info.floor):
            _floor(fig, info.floor, axis.type == ax.LOG, row=1, col=col)
        _apply(fig, axis, "MSE" if col == 1 else "loss", row=1, col=col)
    if grows:
        fig.update_yaxes(title="T (samples)", rangemode="tozero", row=1, col=3)
    longest = max((len(c.epochs) for c in info.curves), default=0)
    fig.update_xaxes(title="epoch", dtick=1 if longest <= 12 else None)
    faded = any(not all(fg.delivered_mask(c)) for c in info.curves)
    fig.update_layout(
        height=480,
        legend_title=f"trial, by {info.x_name} (colour: low to high; x: pruned here"
        + ("; faint: attempts given up" if faded else "")
        + ")",
        margin={"t": 60},
    )
    return fig


def _epoch_note(c: fg.Curve, k: int) -> str:
    """What the hover adds to an epoch: its stage and attempt, where the trial has them."""
    parts = [s for s in (c.stage[k] if k < len(c.stage) else None,) if s]
    if k < len(c.attempt) and c.attempt[k] is not None:
        given_up = c.delivered_attempt is not None and c.attempt[k] != c.delivered_attempt
        parts.append(f"attempt {c.attempt[k] + 1}" + (", given up" if given_up else ""))
    return f" ({', '.join(parts)})" if parts else ""
