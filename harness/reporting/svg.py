"""Small inline-SVG charts for the reports: line chart, grouped bar chart, scatter and CDF.

Why our own: the report is one self-contained file with no scripts or fetched resources, and the run record must
render on a machine without matplotlib. This module computes each drawing (scales, ticks, paths, bars, legend) as
plain data; the markup is the template ``templates/chart.svg.j2``, rendered with autoescape on, so every text a
chart shows (titles, tick labels, legend names, tooltips) is escaped by the template engine. Every chart function
returns one ``<svg>`` element as :class:`~markupsafe.Markup` that a page template embeds as is. Charts use a fixed
viewBox and scale with the page (``width: 100%`` up to their natural size).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from markupsafe import Markup

from harness.reporting.templating import render

__all__ = ["PALETTE", "Series", "bar_chart", "cdf_chart", "format_bytes", "line_chart", "nice_ticks", "scatter_chart"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

WIDTH = 640
HEIGHT = 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 28, 44
_LEGEND_ROW = 16
_MAX_CATEGORY_LABELS = 12
_CATEGORY_LABEL_CHARS = 18


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """A named list of (x, y) points; ``dashed`` for reference lines; ``tips``: a tooltip per point (empty: none)."""

    name: str
    points: Sequence[tuple[float, float]] = field(default_factory=tuple)
    dashed: bool = False
    tips: Sequence[str] = ()


# --------------------------------------------------------------------------------------- the drawing, as data
@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the plot area sits in the viewBox (the template reads its edges)."""

    width: int = WIDTH
    height: int = HEIGHT
    left: int = _LEFT
    right: int = WIDTH - _RIGHT
    top: int = _TOP
    bottom: int = HEIGHT - _BOTTOM
    legend_row: int = _LEGEND_ROW


_BOX = _Layout()


@dataclass(frozen=True, slots=True)
class _Tick:
    at: float  # position on its axis, in viewBox units
    label: str
    anchor: str = "middle"  # of an x tick's label: "start" / "end" keep a long one at an edge inside the chart


@dataclass(frozen=True, slots=True)
class _Axes:
    x_ticks: Sequence[_Tick]
    y_ticks: Sequence[_Tick]
    x_label: str
    y_label: str


@dataclass(frozen=True, slots=True)
class _Mark:
    x: float
    y: float
    tip: str = ""


@dataclass(frozen=True, slots=True)
class _Trace:
    """One series as drawn: its line (SVG path data, empty for none) and its point markers."""

    colour: str
    path: str = ""
    dashed: bool = False
    marks: Sequence[_Mark] = ()


@dataclass(frozen=True, slots=True)
class _Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    tip: str


@dataclass(frozen=True, slots=True)
class _LegendEntry:
    name: str
    colour: str
    dashed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class _Drawing:
    title: str
    axes: _Axes | None = None
    traces: Sequence[_Trace] = ()
    bars: Sequence[_Bar] = ()
    legend: Sequence[_LegendEntry] = ()

    @property
    def height(self) -> int:
        return HEIGHT + len(self.legend) * _LEGEND_ROW + 6


def _draw(drawing: _Drawing) -> Markup:
    return render("chart.svg.j2", chart=drawing, box=_BOX)


def _no_data(title: str) -> Markup:
    return _draw(_Drawing(title=title + " (no data)"))


# --------------------------------------------------------------------------------------------- numbers
def compact_number(value: float) -> str:
    """A number in at most ~4 characters (980, 2930, 12.5k, 3.2M, 0.031): tick labels and heat-table cells."""
    magnitude = abs(value)
    if magnitude >= 1e9:
        return f"{value / 1e9:.3g}G"
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    if magnitude >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def format_bytes(value: float) -> str:
    """Binary size label for byte axes: 8, 1K, 64M, 8G."""
    for suffix, scale in (("T", 2**40), ("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1/2/5 x 10^k steps)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = [round(start, 12)]
    while ticks[-1] < high - step * 1e-9 and len(ticks) < 50:
        ticks.append(round(start + step * len(ticks), 12))
    return ticks


def _scale(low: float, high: float, out_low: float, out_high: float) -> Callable[[float], float]:
    span = (high - low) or 1.0
    return lambda v: out_low + (v - low) / span * (out_high - out_low)


def _category_ticks(positions: Sequence[float], categories: Sequence[str]) -> list[_Tick]:
    """One label per category, shortened to fit; with too many to read, every k-th one."""
    ticks = [
        _Tick(at, c if len(c) <= _CATEGORY_LABEL_CHARS else c[: _CATEGORY_LABEL_CHARS - 1] + "…")
        for at, c in zip(positions, categories, strict=True)
    ]
    if len(ticks) > _MAX_CATEGORY_LABELS:
        ticks = ticks[:: math.ceil(len(ticks) / _MAX_CATEGORY_LABELS)]
    return ticks


# ----------------------------------------------------------------------------------------------- charts
def _xy_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_log2: bool,
    x_format: Callable[[float], str],
    y_zero: bool,
    markers: bool,
    lines: bool,
    step: bool = False,
    y_max: float | None = None,
    x_categories: Sequence[str] | None = None,
) -> Markup:
    def tx(x: float) -> float:
        return math.log2(x) if x_log2 else x

    def kept(x: float, y: float) -> bool:
        return (x > 0 or not x_log2) and math.isfinite(y)

    points = [(tx(x), y) for s in series for x, y in s.points if kept(x, y)]
    if not points:
        return _no_data(title)
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_low, x_high = min(xs), max(xs)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    y_low = min(0.0, *ys) if y_zero else min(ys)
    y_ticks = nice_ticks(y_low, y_max if y_max is not None else max(ys))
    y_low, y_high = min(y_ticks[0], y_low), max(y_ticks[-1], *ys)
    sx = _scale(x_low, x_high, _LEFT + 8, WIDTH - _RIGHT - 8)
    sy = _scale(y_low, y_high, HEIGHT - _BOTTOM, _TOP)
    if x_categories is not None:
        x_ticks = _category_ticks([sx(i) for i in range(len(x_categories))], x_categories)
        if len(x_ticks) > 1:  # the outer points sit near the edges: their labels extend inwards
            x_ticks[0] = replace(x_ticks[0], anchor="start")
            x_ticks[-1] = replace(x_ticks[-1], anchor="end")
    elif x_log2:
        first, last = math.floor(x_low), math.ceil(x_high)
        stride = max(1, math.ceil((last - first + 1) / 10))
        x_ticks = [_Tick(sx(e), x_format(2.0**e)) for e in range(first, last + 1, stride) if x_low <= e <= x_high]
    else:
        x_ticks = [_Tick(sx(v), x_format(v)) for v in nice_ticks(x_low, x_high, 6) if x_low <= v <= x_high]
    axes = _Axes(
        x_ticks=x_ticks,
        y_ticks=[_Tick(sy(v), compact_number(v)) for v in y_ticks if y_low <= v <= y_high],
        x_label=x_label,
        y_label=y_label,
    )
    traces: list[_Trace] = []
    legend: list[_LegendEntry] = []
    for index, s in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        tips = list(s.tips) or [""] * len(s.points)
        pts = [(sx(tx(x)), sy(y), tip) for (x, y), tip in zip(s.points, tips, strict=True) if kept(x, y)]
        if not pts:
            continue
        legend.append(_LegendEntry(s.name, colour, s.dashed))
        path = ""
        if lines and len(pts) > 1:
            if step:
                path = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}" + "".join(f"H{x:.1f}V{y:.1f}" for x, y, _ in pts[1:])
            else:
                path = "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts)
        marks = [_Mark(x, y, tip) for x, y, tip in pts] if markers else []
        traces.append(_Trace(colour, path, s.dashed, marks))
    return _draw(_Drawing(title=title, axes=axes, traces=traces, legend=legend))


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_log2: bool = False,
    x_format: Callable[[float], str] = compact_number,
    x_categories: Sequence[str] | None = None,
    y_zero: bool = True,
) -> Markup:
    """Lines with point markers; ``x_log2`` puts x on a log2 axis (message sizes); ``x_categories`` names the
    points at x = 0, 1, 2, ... (runs of a trend) instead of numeric ticks; ``y_zero=False`` fits y to the data
    rather than starting at zero (a trend's small change stays visible)."""
    return _xy_chart(
        series,
        title=title,
        x_label=x_label,
        y_label=y_label,
        x_log2=x_log2,
        x_format=x_format,
        y_zero=y_zero,
        markers=True,
        lines=True,
        x_categories=x_categories,
    )


def scatter_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str) -> Markup:
    """Points only, one colour per series."""
    return _xy_chart(
        series,
        title=title,
        x_label=x_label,
        y_label=y_label,
        x_log2=False,
        x_format=compact_number,
        y_zero=True,
        markers=True,
        lines=False,
    )


def cdf_chart(samples: Sequence[tuple[str, Sequence[float]]], *, title: str, x_label: str) -> Markup:
    """Empirical CDF (step lines) of each named sample set; y is the fraction at or below x."""
    series = []
    for name, values in samples:
        ordered = sorted(v for v in values if math.isfinite(v))
        n = len(ordered)
        if n > 400:  # thin the steps: 400 points are indistinguishable from 50,000 at this size
            ordered = [ordered[min(n - 1, round(i * (n - 1) / 399))] for i in range(400)]
            points = [(v, (i + 1) / 400) for i, v in enumerate(ordered)]
        else:
            points = [(v, (i + 1) / n) for i, v in enumerate(ordered)]
        series.append(Series(name=f"{name} (n={n})", points=points))
    return _xy_chart(
        series,
        title=title,
        x_label=x_label,
        y_label="fraction ≤ x",
        x_log2=False,
        x_format=compact_number,
        y_zero=True,
        markers=False,
        lines=True,
        step=True,
        y_max=1.0,
    )


def bar_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    y_label: str,
) -> Markup:
    """Grouped vertical bars: one group per category, one bar per series (None leaves a gap)."""
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    if not categories or not values:
        return _no_data(title)
    y_ticks = nice_ticks(min(0.0, *values), max(values))
    y_low, y_high = y_ticks[0], max(y_ticks[-1], *values)
    sy = _scale(y_low, y_high, HEIGHT - _BOTTOM, _TOP)
    group_w = (WIDTH - _RIGHT - _LEFT) / len(categories)
    bar_w = max(1.0, group_w * 0.8 / max(len(series), 1))
    axes = _Axes(
        x_ticks=_category_ticks([_LEFT + group_w * (i + 0.5) for i in range(len(categories))], categories),
        y_ticks=[_Tick(sy(v), compact_number(v)) for v in y_ticks],
        x_label="",
        y_label=y_label,
    )
    bars = []
    zero = sy(max(y_low, 0.0))
    for s_index, (name, vs) in enumerate(series):
        colour = PALETTE[s_index % len(PALETTE)]
        for c_index, v in enumerate(vs):
            if v is None or not math.isfinite(v):
                continue
            top = sy(v)
            bars.append(
                _Bar(
                    x=_LEFT + group_w * c_index + group_w * 0.1 + bar_w * s_index,
                    y=min(top, zero),
                    width=bar_w,
                    height=max(abs(zero - top), 0.5),
                    colour=colour,
                    tip=f"{categories[c_index]} {name}: {compact_number(v)}",
                )
            )
    legend = [_LegendEntry(name, PALETTE[i % len(PALETTE)], False) for i, (name, _) in enumerate(series)]
    return _draw(_Drawing(title=title, axes=axes, bars=bars, legend=legend if len(series) > 1 else []))
