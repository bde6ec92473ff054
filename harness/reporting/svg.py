"""Small inline-SVG charts for the HTML report: line chart, grouped bar chart, scatter and CDF.

Why our own: the report is one self-contained file with no scripts or fetched resources, and the run record must
render on a machine without matplotlib. Every function returns one ``<svg>`` element as a string; all text is
HTML-escaped. Charts use a fixed viewBox and scale with the page (``width: 100%`` up to their natural size).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["PALETTE", "Series", "bar_chart", "cdf_chart", "format_bytes", "line_chart", "nice_ticks", "scatter_chart"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

WIDTH = 640
HEIGHT = 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 28, 44
_LEGEND_ROW = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """A named list of (x, y) points; ``dashed`` for reference lines."""

    name: str
    points: Sequence[tuple[float, float]] = field(default_factory=tuple)
    dashed: bool = False


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


def _frame(title: str, legend: Sequence[tuple[str, str, bool]], body: list[str], height: int) -> str:
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" width="{WIDTH}" height="{height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{WIDTH / 2:.0f}" y="16" text-anchor="middle" class="ct">{escape(title)}</text>',
        *body,
    ]
    y = HEIGHT + 4
    for index, (name, colour, dashed) in enumerate(legend):
        row_y = y + index * _LEGEND_ROW
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        parts.append(
            f'<line x1="{_LEFT}" y1="{row_y - 4}" x2="{_LEFT + 18}" y2="{row_y - 4}" stroke="{colour}" '
            f'stroke-width="3"{dash}/><text x="{_LEFT + 24}" y="{row_y}" class="lg">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _axes(
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_label: str,
    y_label: str,
) -> list[str]:
    plot_bottom = HEIGHT - _BOTTOM
    out = [
        f'<line x1="{_LEFT}" y1="{plot_bottom}" x2="{WIDTH - _RIGHT}" y2="{plot_bottom}" class="ax"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{plot_bottom}" class="ax"/>',
    ]
    for px, label in x_ticks:
        out.append(
            f'<line x1="{px:.1f}" y1="{plot_bottom}" x2="{px:.1f}" y2="{plot_bottom + 4}" class="ax"/>'
            f'<text x="{px:.1f}" y="{plot_bottom + 16}" text-anchor="middle" class="tk">{escape(label)}</text>'
        )
    for py, label in y_ticks:
        out.append(
            f'<line x1="{_LEFT}" y1="{py:.1f}" x2="{WIDTH - _RIGHT}" y2="{py:.1f}" class="gr"/>'
            f'<text x="{_LEFT - 6}" y="{py + 4:.1f}" text-anchor="end" class="tk">{escape(label)}</text>'
        )
    out.append(
        f'<text x="{(_LEFT + WIDTH - _RIGHT) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle" class="al">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text x="14" y="{(_TOP + plot_bottom) / 2:.0f}" text-anchor="middle" class="al" '
        f'transform="rotate(-90 14 {(_TOP + plot_bottom) / 2:.0f})">{escape(y_label)}</text>'
    )
    return out


def _scale(low: float, high: float, out_low: float, out_high: float) -> Callable[[float], float]:
    span = (high - low) or 1.0
    return lambda v: out_low + (v - low) / span * (out_high - out_low)


def _height(legend_rows: int) -> int:
    return HEIGHT + max(legend_rows, 0) * _LEGEND_ROW + 6


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
) -> str:
    def tx(x: float) -> float:
        return math.log2(x) if x_log2 else x

    points = [(tx(x), y) for s in series for x, y in s.points if (x > 0 or not x_log2) and math.isfinite(y)]
    if not points:
        return _frame(title + " (no data)", [], [], _height(0))
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
    if x_log2:
        first, last = math.floor(x_low), math.ceil(x_high)
        stride = max(1, math.ceil((last - first + 1) / 10))
        x_tick_values = [float(e) for e in range(first, last + 1, stride) if x_low <= e <= x_high]
        x_ticks = [(sx(e), x_format(2.0**e)) for e in x_tick_values]
    else:
        x_ticks = [(sx(v), x_format(v)) for v in nice_ticks(x_low, x_high, 6) if x_low <= v <= x_high]
    body = _axes(x_ticks, [(sy(v), compact_number(v)) for v in y_ticks if y_low <= v <= y_high], x_label, y_label)
    legend: list[tuple[str, str, bool]] = []
    for index, s in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        pts = [(sx(tx(x)), sy(y)) for x, y in s.points if (x > 0 or not x_log2) and math.isfinite(y)]
        if not pts:
            continue
        legend.append((s.name, colour, s.dashed))
        if lines and len(pts) > 1:
            if step:
                path = [f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"]
                path.extend(f"H{x1:.1f}V{y1:.1f}" for x1, y1 in pts[1:])
                d = "".join(path)
            else:
                d = "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            body.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        if markers:
            body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>' for x, y in pts)
    return _frame(title, legend, body, _height(len(legend)))


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_log2: bool = False,
    x_format: Callable[[float], str] = compact_number,
) -> str:
    """Lines with point markers; ``x_log2`` puts x on a log2 axis (message sizes)."""
    return _xy_chart(
        series,
        title=title,
        x_label=x_label,
        y_label=y_label,
        x_log2=x_log2,
        x_format=x_format,
        y_zero=True,
        markers=True,
        lines=True,
    )


def scatter_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str) -> str:
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


def cdf_chart(samples: Sequence[tuple[str, Sequence[float]]], *, title: str, x_label: str) -> str:
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
) -> str:
    """Grouped vertical bars: one group per category, one bar per series (None leaves a gap)."""
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    if not categories or not values:
        return _frame(title + " (no data)", [], [], _height(0))
    y_ticks = nice_ticks(min(0.0, *values), max(values))
    y_low, y_high = y_ticks[0], max(y_ticks[-1], *values)
    sy = _scale(y_low, y_high, HEIGHT - _BOTTOM, _TOP)
    plot_w = WIDTH - _RIGHT - _LEFT
    group_w = plot_w / len(categories)
    bar_w = max(1.0, group_w * 0.8 / max(len(series), 1))
    x_ticks = [(_LEFT + group_w * (i + 0.5), c if len(c) <= 18 else c[:17] + "…") for i, c in enumerate(categories)]
    if len(categories) > 12:  # too many labels to read: label every k-th group
        stride = math.ceil(len(categories) / 12)
        x_ticks = x_ticks[::stride]
    body = _axes(x_ticks, [(sy(v), compact_number(v)) for v in y_ticks], "", y_label)
    legend = []
    zero = sy(max(y_low, 0.0))
    for s_index, (name, vs) in enumerate(series):
        colour = PALETTE[s_index % len(PALETTE)]
        legend.append((name, colour, False))
        for c_index, v in enumerate(vs):
            if v is None or not math.isfinite(v):
                continue
            x = _LEFT + group_w * c_index + group_w * 0.1 + bar_w * s_index
            top = sy(v)
            y, h = min(top, zero), abs(zero - top)
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 0.5):.1f}" fill="{colour}">'
                f"<title>{escape(categories[c_index])} {escape(name)}: {compact_number(v)}</title></rect>"
            )
    return _frame(title, legend if len(series) > 1 else [], body, _height(len(legend) if len(series) > 1 else 0))
