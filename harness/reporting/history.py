"""The history view: how each metric moved across runs, e.g. nightly ones (DESIGN.md section 7).

A series is one ``(workload, metric, labels without node, unit)``: per-node measurements of one run fold into one
point (their mean, with the node count kept), so a fleet's trend is one line and not one line per node.
Runs are ordered by ``started_at``; a record without it (interrupted before run.json was written) goes last in
the order given, and says so in :attr:`History.problems`.

Output: :func:`format_history` for the terminal (last, min, max, change vs the previous run, and a sparkline),
and :func:`render_history_svg` (via :func:`render_history_html`) for ``history.html``: one self-contained page with an
inline SVG line chart per series (no plotting library, no scripts, no external resources).
"""

from __future__ import annotations

import datetime
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.reporting.atomic import write_atomic
from harness.reporting.load import RunRecordData, load_record
from harness.reporting.outcome import Outcome, outcome_of_record

__all__ = [
    "FOLDED_LABELS",
    "History",
    "Point",
    "Series",
    "format_history",
    "history",
    "render_history_html",
    "render_history_svg",
    "render_series_svg",
    "sparkline",
]

#: Labels that identify where a number was measured rather than what it is; a series folds over them.
FOLDED_LABELS = frozenset({"node"})
_SPARKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    run_id: str
    started_at: float | None
    value: float
    count: int  # measurements folded into this point (nodes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    workload: str
    metric: str
    labels: tuple[tuple[str, str], ...]
    unit: str
    points: tuple[Point, ...]

    @property
    def title(self) -> str:
        labels = "{" + ", ".join(f"{k}={v}" for k, v in self.labels) + "}" if self.labels else ""
        return f"{self.workload + ' ' if self.workload else ''}{self.metric}{labels}"

    @property
    def last(self) -> float:
        return self.points[-1].value

    @property
    def min(self) -> float:
        return min(p.value for p in self.points)

    @property
    def max(self) -> float:
        return max(p.value for p in self.points)

    @property
    def change(self) -> float | None:
        """Last minus the previous point; None with a single point."""
        return self.points[-1].value - self.points[-2].value if len(self.points) > 1 else None

    @property
    def change_pct(self) -> float | None:
        if len(self.points) < 2 or self.points[-2].value == 0:
            return None
        return (self.points[-1].value - self.points[-2].value) / abs(self.points[-2].value) * 100.0


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    runs: tuple[tuple[str, float | None], ...]  # (run_id, started_at) in order
    series: tuple[Series, ...]
    problems: tuple[str, ...] = field(default=())
    #: (run_id, why) of runs kept out of the trends: interrupted or aborted runs measured only part of what they
    #: set out to, so their numbers would bend a trend without saying so.
    set_apart: tuple[tuple[str, str], ...] = field(default=())


def _set_apart(records: Sequence[RunRecordData]) -> tuple[list[RunRecordData], list[tuple[str, str]]]:
    kept, apart = [], []
    for record in records:
        stated = outcome_of_record(record.info, record.counts())
        if stated in (Outcome.INTERRUPTED, Outcome.ABORTED):
            reason = record.info.end_reason
            apart.append((record.run_id, f"{stated}" + (f": {reason}" if reason else "")))
        else:
            kept.append(record)
    return kept, apart


def _ordered(records: Sequence[RunRecordData], problems: list[str]) -> list[RunRecordData]:
    dated = [r for r in records if r.started_at is not None]
    undated = [r for r in records if r.started_at is None]
    for record in undated:
        problems.append(f"{record.run_id}: no started_at (run.json missing or incomplete); placed after the dated runs")
    return sorted(dated, key=lambda r: (r.started_at, r.run_id)) + undated


def history(runs: Iterable[RunRecordData | Path | str], *, folded_labels: frozenset[str] = FOLDED_LABELS) -> History:
    """The trend table of ``runs`` (run records, or their directories, which are loaded)."""
    records, apart = _set_apart([r if isinstance(r, RunRecordData) else load_record(r) for r in runs])
    problems: list[str] = []
    ordered = _ordered(records, problems)
    for record in ordered:
        problems.extend(f"{record.run_id}: {p}" for p in record.problems)
    # key -> run index -> [sum, count]
    sums: dict[tuple[str, str, tuple[tuple[str, str], ...], str], dict[int, list[float]]] = {}
    for index, record in enumerate(ordered):
        for result in record.results:
            workload = result.workload
            for m in result.measurements:
                labels = tuple(sorted((k, v) for k, v in m.labels.items() if k not in folded_labels))
                per_run = sums.setdefault((workload, m.metric, labels, m.unit), {})
                acc = per_run.get(index)
                if acc is None:
                    per_run[index] = [m.value, 1]
                else:
                    acc[0] += m.value
                    acc[1] += 1
    series = []
    for (workload, metric, labels, unit), per_run in sums.items():
        points = tuple(
            Point(run_id=ordered[i].run_id, started_at=ordered[i].started_at, value=total / count, count=int(count))
            for i, (total, count) in sorted(per_run.items())
        )
        series.append(Series(workload=workload, metric=metric, labels=labels, unit=unit, points=points))
    series.sort(key=lambda s: (s.workload, s.metric, s.labels, s.unit))
    return History(
        runs=tuple((r.run_id, r.started_at) for r in ordered),
        series=tuple(series),
        problems=tuple(problems),
        set_apart=tuple(apart),
    )


def _num(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.6g}"


def sparkline(values: Sequence[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return _SPARKS[3] * len(values)
    return "".join(_SPARKS[min(7, int((v - low) / (high - low) * 7 + 0.5))] for v in values)


def format_history(hist: History, *, max_series: int | None = None) -> str:
    """Terminal text: one line per series with runs, last, min, max, change vs previous and a sparkline."""
    lines = [f"history of {len(hist.runs)} runs: " + ", ".join(run for run, _ in hist.runs)]
    lines.extend(f"note: {p}" for p in hist.problems)
    lines.extend(f"set apart, not in the trends: {run} ({why})" for run, why in hist.set_apart)
    table = [("metric", "unit", "runs", "last", "min", "max", "vs prev", "trend")]
    series = hist.series if max_series is None else hist.series[:max_series]
    for s in series:
        pct = s.change_pct
        change = "-" if s.change is None else (f"{s.change:+.6g}" + (f" ({pct:+.1f}%)" if pct is not None else ""))
        table.append(
            (
                s.title,
                s.unit,
                str(len(s.points)),
                _num(s.last),
                _num(s.min),
                _num(s.max),
                change,
                sparkline([p.value for p in s.points]),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines.append("")
    lines.extend("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)
    if len(series) < len(hist.series):
        lines.append(f"... {len(hist.series) - len(series)} more series")
    return "\n".join(lines) + "\n"


def _when(started_at: float | None) -> str:
    if started_at is None:
        return "unknown time"
    return datetime.datetime.fromtimestamp(started_at, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_series_svg(series: Series, *, width: int = 640, height: int = 200) -> str:
    """One inline ``<svg>`` line chart: x = run order, y = value; each point has a tooltip with run and value."""
    left, right, top, bottom = 64, 16, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [p.value for p in series.points]
    low, high = min(values), max(values)
    if high == low:
        pad = abs(high) * 0.05 or 1.0
        low, high = low - pad, high + pad
    n = len(values)

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y(v: float) -> float:
        return top + (high - v) / (high - low) * plot_h

    coords = [(x(i), y(v)) for i, v in enumerate(values)]
    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(series.title)}">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">{esc(_num(high))}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">{esc(_num(low))}</text>',
        f'<text x="{left}" y="{height - 8}" font-size="11">{esc(series.points[0].run_id)}</text>',
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end" font-size="11">'
        f"{esc(series.points[-1].run_id)}</text>",
    ]
    if n > 1:
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        parts.append(f'<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{path}"/>')
    for (cx, cy), p in zip(coords, series.points, strict=True):
        tip = f"{p.run_id} ({_when(p.started_at)}): {_num(p.value)} {series.unit}"
        if p.count > 1:
            tip += f" (mean of {p.count})"
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="#1f6feb"><title>{esc(tip)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def render_history_html(hist: History, *, title: str = "k8s-ai-bench history") -> str:
    """``history.html``: a summary table and one chart per series, in one self-contained file."""
    esc = html.escape
    rows = []
    for s in hist.series:
        pct = s.change_pct
        change = "-" if s.change is None else f"{s.change:+.6g}" + (f" ({pct:+.1f}%)" if pct is not None else "")
        rows.append(
            f"<tr><td>{esc(s.title)}</td><td>{esc(s.unit)}</td><td>{len(s.points)}</td>"
            f"<td>{esc(_num(s.last))}</td><td>{esc(_num(s.min))}</td><td>{esc(_num(s.max))}</td>"
            f"<td>{esc(change)}</td></tr>"
        )
    charts = "\n".join(
        f"<section><h2>{esc(s.title)} <small>({esc(s.unit)})</small></h2>{render_series_svg(s)}</section>"
        for s in hist.series
    )
    runs = ", ".join(f"{esc(run)} ({esc(_when(at))})" for run, at in hist.runs)
    problems = "".join(f"<li>{esc(p)}</li>" for p in hist.problems) + "".join(
        f"<li>set apart, not in the trends: {esc(run)} ({esc(why)})</li>" for run, why in hist.set_apart
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:2px 8px;text-align:left}}h2{{font-size:1em}}small{{color:#666}}</style>
</head><body>
<h1>{esc(title)}</h1>
<p>{len(hist.runs)} runs: {runs}</p>
{f"<ul class='problems'>{problems}</ul>" if problems else ""}
<table><thead><tr><th>metric</th><th>unit</th><th>runs</th><th>last</th><th>min</th><th>max</th>
<th>vs previous</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table>
{charts}
</body></html>
"""


def render_history_svg(hist: History, path: Path | str, *, title: str = "k8s-ai-bench history") -> Path:
    """Write ``history.html`` (:func:`render_history_html`: an inline SVG chart per series) to ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, render_history_html(hist, title=title))
    return out
