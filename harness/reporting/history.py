"""The history view: how each metric moved across runs, e.g. nightly ones (DESIGN.md section 7).

A series is one ``(workload, metric, labels without node, unit)``: per-node measurements of one run fold into one
point (their mean, with the node count kept), so a fleet's trend is one line and not one line per node.
Runs are ordered by ``started_at``; a record without it (interrupted before run.json was written) goes last in
the order given, and says so in :attr:`History.problems`.

Output: :func:`format_history` for the terminal (last, min, max, change vs the previous run, and a sparkline),
and :func:`render_history_svg` (via :func:`render_history_html`) for ``history.html``: one self-contained page with an
inline SVG line chart per series (no plotting library, no scripts, no external resources). The page is the template
``templates/history.html.j2`` and each chart the report's own line chart (:func:`harness.reporting.svg.line_chart`),
both rendered by the reports' one autoescaping environment (:mod:`harness.reporting.templating`).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path

from markupsafe import Markup

from harness.reporting.atomic import write_atomic
from harness.reporting.load import RunRecordData, load_record
from harness.reporting.outcome import Outcome, outcome_of_record
from harness.reporting.svg import Series as ChartSeries
from harness.reporting.svg import line_chart
from harness.reporting.templating import render

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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Row:
    """One series as both outputs summarise it: the terminal table's row and the page's table row (fields in
    column order)."""

    title: str
    unit: str
    runs: str
    last: str
    min: str
    max: str
    change: str  # vs the previous run: absolute, and in percent where the previous value is not zero

    @classmethod
    def of(cls, s: Series) -> _Row:
        pct = s.change_pct
        change = "-" if s.change is None else (f"{s.change:+.6g}" + (f" ({pct:+.1f}%)" if pct is not None else ""))
        return cls(
            title=s.title,
            unit=s.unit,
            runs=str(len(s.points)),
            last=_num(s.last),
            min=_num(s.min),
            max=_num(s.max),
            change=change,
        )


def format_history(hist: History, *, max_series: int | None = None) -> str:
    """Terminal text: one line per series with runs, last, min, max, change vs previous and a sparkline."""
    lines = [f"history of {len(hist.runs)} runs: " + ", ".join(run for run, _ in hist.runs)]
    lines.extend(f"note: {p}" for p in hist.problems)
    lines.extend(f"set apart, not in the trends: {run} ({why})" for run, why in hist.set_apart)
    table = [("metric", "unit", "runs", "last", "min", "max", "vs prev", "trend")]
    series = hist.series if max_series is None else hist.series[:max_series]
    table.extend((*astuple(_Row.of(s)), sparkline([p.value for p in s.points])) for s in series)
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


def render_series_svg(series: Series) -> Markup:
    """One inline ``<svg>`` trend chart, the report's line chart: x = the runs in order (named on the axis), y =
    the value, fitted to the data so a small change stays visible; each point's tooltip gives run, time and value."""
    tips = [
        f"{p.run_id} ({_when(p.started_at)}): {_num(p.value)} {series.unit}"
        + (f" (mean of {p.count})" if p.count > 1 else "")
        for p in series.points
    ]
    folded = any(p.count > 1 for p in series.points)
    line = ChartSeries(
        name=series.metric + (" (mean over nodes)" if folded else ""),
        points=[(float(i), p.value) for i, p in enumerate(series.points)],
        tips=tips,
    )
    return line_chart(
        [line],
        title=series.title,
        x_label="run",
        y_label=series.unit,
        x_categories=[p.run_id for p in series.points],
        y_zero=False,
    )


def render_history_html(hist: History, *, title: str = "k8s-ai-bench history") -> str:
    """``history.html``: a summary table and one chart per series, in one self-contained file."""
    rows = [(_Row.of(s), render_series_svg(s)) for s in hist.series]
    return str(
        render(
            "history.html.j2",
            title=title,
            runs=[(run, _when(at)) for run, at in hist.runs],
            problems=hist.problems,
            set_apart=hist.set_apart,
            rows=rows,
        )
    )


def render_history_svg(hist: History, path: Path | str, *, title: str = "k8s-ai-bench history") -> Path:
    """Write ``history.html`` (:func:`render_history_html`: an inline SVG chart per series) to ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, render_history_html(hist, title=title))
    return out
