"""The plots of one test in the HTML report, chosen from the metrics its measurements carry.

- ``busbw`` (nccl-tests, the TCP/gloo baseline...): bus bandwidth vs message size on a log2 axis, titled with the
  data path (``backend``/``transport`` labels), one line per (op, nodes, placement),
  with the bar of a ``busbw`` check as a dashed line;
- fio ``bw`` / ``iops``: bars per job and direction, and a table of ``clat`` percentiles;
- inference latencies (``ttft``, ``tpot``, ``itl``, ``latency``, ``e2e_latency`` with percentiles): grouped bars per
  percentile, and a TTFT/TPOT scatter of the pairs that share labels;
- ``startup_latency``: a CDF of the raw samples (``stat=sample``), else of the percentiles.

Every function takes the result's typed measurements and checks (:mod:`harness.reporting.schema`) and returns
:class:`Plot` s: an inline SVG chart (markup rendered by :mod:`harness.reporting.svg`'s template with autoescape,
so the page template inserts it as is) or a table of numbers that the page template renders (and escapes); series
built from emulated measurements say so in their legend.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from harness.reporting.schema import CheckEntry, MeasurementEntry
from harness.reporting.svg import Series, bar_chart, cdf_chart, format_bytes, line_chart, scatter_chart

__all__ = ["Chart", "LatencyTable", "Plot", "plots_for"]

MAX_SERIES = 10
MAX_BARS = 40
MAX_SCATTER_POINTS = 2000
LATENCY_METRICS = ("ttft", "tpot", "itl", "latency", "e2e_latency")
_EMULATED = " [emulated]"


@dataclass(frozen=True, slots=True)
class Chart:
    """An inline SVG chart, drawn by :mod:`harness.reporting.svg` (its template escaped every text in it)."""

    svg: Markup
    kind: str = "chart"


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyTable:
    """fio completion-latency percentiles per job: ``rows`` are (job, a formatted cell per column)."""

    unit: str
    emulated: bool
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    kind: str = "latency-table"


Plot = Chart | LatencyTable


def _labels(item: MeasurementEntry) -> Mapping[str, str]:
    return item.labels


def _of_metric(measurements: Iterable[MeasurementEntry], *metrics: str) -> list[MeasurementEntry]:
    return [m for m in measurements if m.metric in metrics]


def _unit(items: Sequence[MeasurementEntry]) -> str:
    return items[0].unit if items else ""


def _key_text(key: Iterable[tuple[str, str]]) -> str:
    return " ".join(f"{k}={v}" for k, v in key) or "all"


def _percentile(labels: Mapping[str, str]) -> float | None:
    """``stat=percentile, percentile=99.9`` or ``stat=p99`` -> 99.9 / 99.0."""
    stat = labels.get("stat", "")
    text = labels.get("percentile") if stat == "percentile" or "percentile" in labels else None
    if text is None and len(stat) > 1 and stat[0] == "p" and stat[1:].replace(".", "", 1).isdigit():
        text = stat[1:]
    if stat == "median":
        return 50.0
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _p_label(p: float) -> str:
    return f"p{p:g}"


def busbw_plot(measurements: Sequence[MeasurementEntry], checks: Sequence[CheckEntry]) -> list[Plot]:
    rows = _of_metric(measurements, "busbw")
    groups: dict[tuple[tuple[str, str], ...], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    emulated: set[tuple[tuple[str, str], ...]] = set()
    for m in rows:
        labels = _labels(m)
        try:
            size = float(labels["size"])
        except (KeyError, ValueError):
            continue
        key = tuple((k, labels[k]) for k in ("op", "nodes", "placement") if k in labels)
        groups[key][size].append(m.value)
        if m.emulated:
            emulated.add(key)
    if not groups or len({size for sizes in groups.values() for size in sizes}) < 2:
        return []  # one message size is a number in the table, not a curve
    # name the data path the numbers came from: NCCL, the TCP/gloo baseline or Ray's object store are not alike
    paths = sorted({_labels(m)[k] for m in rows for k in ("backend", "transport") if _labels(m).get(k)})
    series = []
    for key in sorted(groups)[:MAX_SERIES]:
        points = sorted((size, sum(vs) / len(vs)) for size, vs in groups[key].items())
        series.append(Series(name=_key_text(key) + (_EMULATED if key in emulated else ""), points=points))
    sizes = [x for s in series for x, _ in s.points]
    bars = sorted({(c.bar, c.comparison, c.source) for c in checks if c.metric == "busbw" and c.bar is not None})[:2]
    for bar, comparison, source in bars:
        name = f"bar {comparison} {bar:g} {_unit(rows)}" + (f" ({source})" if source else "")
        series.append(Series(name=name, points=[(min(sizes), bar), (max(sizes), bar)], dashed=True))
    title = (
        "Bus bandwidth vs message size" + (f" ({', '.join(paths)})" if paths else "") + (_EMULATED if emulated else "")
    )
    svg = Chart(
        line_chart(
            series,
            title=title,
            x_label="message size (bytes, log2)",
            y_label=f"busbw ({_unit(rows)})",
            x_log2=True,
            x_format=format_bytes,
        )
    )
    return [svg]


def _fio_job(labels: Mapping[str, str]) -> str | None:
    """The row name of one fio series: its job, and its direction when it has one (None: not a per-job series)."""
    if "job" not in labels:
        return None
    return labels["job"] + (f" {labels['direction']}" if "direction" in labels else "")


def fio_plots(measurements: Sequence[MeasurementEntry]) -> list[Plot]:
    out: list[Plot] = []
    for metric, title in (("bw", "fio bandwidth per job"), ("iops", "fio IOPS per job")):
        rows = _of_metric(measurements, metric)
        values: dict[str, float] = {}
        emulated = False
        for m in rows:
            name = _fio_job(_labels(m))
            if name is None:
                continue
            values[name] = values.get(name, 0.0) + m.value
            emulated = emulated or m.emulated
        if values:
            names = sorted(values)[:MAX_BARS]
            out.append(
                Chart(
                    bar_chart(
                        names,
                        [(metric, [values[n] for n in names])],
                        title=title + (_EMULATED if emulated else ""),
                        y_label=f"{metric} ({_unit(rows)})",
                    )
                )
            )
    table = _clat_table(_of_metric(measurements, "clat"))
    if table is not None:
        out.append(table)
    return out


def _clat_table(rows: Sequence[MeasurementEntry]) -> LatencyTable | None:
    cells: dict[str, dict[str, float]] = defaultdict(dict)
    columns: set[float] = set()
    emulated = False
    for m in rows:
        labels = _labels(m)
        name = _fio_job(labels)
        if name is None:
            continue
        p = _percentile(labels)
        column = _p_label(p) if p is not None else labels.get("stat", "")
        if p is not None:
            columns.add(p)
        cells[name][column] = m.value
        emulated = emulated or m.emulated
    if not cells:
        return None
    ordered = sorted(columns)
    if len(ordered) > 12:
        wanted = [p for p in ordered if p in (1, 5, 10, 50, 90, 95, 99, 99.5, 99.9, 99.99)]
        ordered = wanted or ordered[:12]
    names = [c for c in ("min", "mean") if any(c in row for row in cells.values())]
    names += [_p_label(p) for p in ordered]
    names += ["max"] if any("max" in row for row in cells.values()) else []
    body = [
        (job, [f"{cells[job][n]:.4g}" if n in cells[job] else "-" for n in names]) for job in sorted(cells)[:MAX_BARS]
    ]
    return LatencyTable(unit=_unit(rows), emulated=emulated, columns=names, rows=body)


def inference_plots(measurements: Sequence[MeasurementEntry]) -> list[Plot]:
    out: list[Plot] = []
    rows = [m for m in _of_metric(measurements, *LATENCY_METRICS) if _percentile(_labels(m)) is not None]
    by_unit: dict[str, list[MeasurementEntry]] = defaultdict(list)
    for m in rows:
        by_unit[m.unit].append(m)
    for unit, items in sorted(by_unit.items()):
        values: dict[str, dict[float, float]] = defaultdict(dict)
        emulated: set[str] = set()
        for m in items:
            labels = _labels(m)
            rest = tuple((k, v) for k, v in sorted(labels.items()) if k not in ("stat", "percentile"))
            name = m.metric + (f" {_key_text(rest)}" if rest else "")
            p = _percentile(labels)
            assert p is not None
            values[name][p] = m.value
            if m.emulated:
                emulated.add(name)
        percentiles = sorted({p for v in values.values() for p in v})[:12]
        names = sorted(values)[:MAX_SERIES]
        series = [(n + (_EMULATED if n in emulated else ""), [values[n].get(p) for p in percentiles]) for n in names]
        out.append(
            Chart(
                bar_chart(
                    [_p_label(p) for p in percentiles],
                    series,
                    title="inference latency percentiles" + (_EMULATED if emulated else ""),
                    y_label=f"latency ({unit})",
                )
            )
        )
    scatter = _ttft_tpot_scatter(measurements)
    if scatter is not None:
        out.append(Chart(scatter))
    return out


def _ttft_tpot_scatter(measurements: Sequence[MeasurementEntry]) -> Markup | None:
    ttft: dict[tuple[tuple[str, str], ...], MeasurementEntry] = {}
    tpot: dict[tuple[tuple[str, str], ...], MeasurementEntry] = {}
    for m in _of_metric(measurements, "ttft", "tpot"):
        key = tuple(sorted(_labels(m).items()))
        (ttft if m.metric == "ttft" else tpot)[key] = m
    pairs = [(key, ttft[key], tpot[key]) for key in ttft if key in tpot]
    if not pairs:
        return None
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    emulated = False
    for key, a, b in pairs[:MAX_SCATTER_POINTS]:
        labels = dict(key)
        p = _percentile(labels)
        name = _p_label(p) if p is not None else labels.get("stat", "sample")
        groups[name].append((a.value, b.value))
        emulated = emulated or a.emulated or b.emulated
    series = [Series(name=name, points=points) for name, points in sorted(groups.items())[:MAX_SERIES]]
    title = "TTFT vs TPOT" + (_EMULATED if emulated else "")
    return scatter_chart(
        series,
        title=title,
        x_label=f"TTFT ({pairs[0][1].unit})",
        y_label=f"TPOT ({pairs[0][2].unit})",
    )


def startup_cdf(measurements: Sequence[MeasurementEntry]) -> list[Plot]:
    rows = _of_metric(measurements, "startup_latency")
    if not rows:
        return []
    unit = _unit(rows)
    emulated = any(m.emulated for m in rows)
    title = "pod startup latency CDF" + (_EMULATED if emulated else "")
    samples: dict[str, list[float]] = defaultdict(list)
    percentiles: dict[str, list[tuple[float, float]]] = defaultdict(list)
    ignored = {"stat", "percentile", "sample", "pod", "index", "node"}
    for m in rows:
        labels = _labels(m)
        rest = _key_text(tuple((k, v) for k, v in sorted(labels.items()) if k not in ignored))
        if labels.get("stat") == "sample":
            samples[rest].append(m.value)
        elif (p := _percentile(labels)) is not None:
            percentiles[rest].append((m.value, p / 100.0))
    if samples:
        data = [(name, values) for name, values in sorted(samples.items())[:MAX_SERIES]]
        return [Chart(cdf_chart(data, title=title, x_label=f"startup latency ({unit})"))]
    if percentiles:
        series = [
            Series(name=f"{name} (percentiles)", points=sorted(points))
            for name, points in sorted(percentiles.items())[:MAX_SERIES]
        ]
        return [Chart(line_chart(series, title=title, x_label=f"startup latency ({unit})", y_label="fraction ≤ x"))]
    return []


def plots_for(measurements: Sequence[MeasurementEntry], checks: Sequence[CheckEntry]) -> list[Plot]:
    """Every plot that applies to one test's data (possibly none)."""
    metrics = {m.metric for m in measurements}
    out: list[Plot] = []
    if "busbw" in metrics:
        out += busbw_plot(measurements, checks)
    if metrics & {"bw", "iops", "clat"}:
        out += fio_plots(measurements)
    if metrics & set(LATENCY_METRICS):
        out += inference_plots(measurements)
    if "startup_latency" in metrics:
        out += startup_cdf(measurements)
    return out
