"""Locust ``--csv`` stats files and our own raw per-request samples.

Why both: locust's CSV is what every locust user has, but it rounds percentiles (to 2 significant digits above
100 ms: ``95%`` = 33000) and cannot hold TTFT. Our load scripts therefore also write raw samples, one JSON object
per line, from which percentiles are computed exactly (DESIGN.md section 9).

CSV: column names changed across locust versions (0.x ``Method``/``# requests``/``Median response time``; 1.x+
``Type``/``Request Count``/``Median Response Time``), percentile columns vary (``99.999%`` only in some versions),
the file is written with CRLF line endings, the ``Aggregated`` row has an empty Type, and percentiles are ``N/A``
for endpoints without requests. Columns are found by name; unknown extra columns are ignored.

Metric scheme (labels ``endpoint`` = Name, ``method`` = Type when not empty): ``latency`` in ms with
``stat=median|mean|min|max`` or ``stat=percentile`` + ``percentile=99.9``; ``requests_per_s`` (req/s),
``requests`` and ``failures`` (count), ``failure_ratio`` (%). Raw samples add ``ttft`` (ms, same ``stat`` scheme),
``tokens_per_s`` (tok/s) and name the aggregate endpoint ``Aggregated`` like locust.

Percentiles are computed by :func:`harness.statistics.percentiles` with **linear interpolation between closest
ranks** (numpy's default, Excel's PERCENTILE.INC), so they match the vLLM benchmark scripts our inference bars come
from.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from harness.measurement import Measurement
from harness.parsers._lines import json_lines, parse_error
from harness.parsers._numbers import is_finite, is_number, number
from harness.statistics import Method, percentile_measurements, percentile_text, stat_measurements

__all__ = [
    "AGGREGATED",
    "LocustStatsRow",
    "RawSample",
    "is_locust_stats_history",
    "locust_history_measurements",
    "locust_measurements",
    "parse_locust_stats_csv",
    "parse_raw_samples",
    "raw_sample_measurements",
]

AGGREGATED = "Aggregated"
_TOOL = "locust csv"
_RAW = "raw samples"

_COLUMNS: dict[str, tuple[str, ...]] = {
    "type": ("Type", "Method"),
    "name": ("Name",),
    "requests": ("Request Count", "# requests", "# Requests"),
    "failures": ("Failure Count", "# failures", "# Failures"),
    "median": ("Median Response Time", "Median response time"),
    "mean": ("Average Response Time", "Average response time"),
    "min": ("Min Response Time", "Min response time"),
    "max": ("Max Response Time", "Max response time"),
    "content": ("Average Content Size",),
    "rps": ("Requests/s",),
    "fps": ("Failures/s",),
}
_REQUIRED = ("name", "requests", "failures", "median", "mean", "min", "max", "rps")


@dataclass(frozen=True, slots=True, kw_only=True)
class LocustStatsRow:
    """One endpoint row (or the ``Aggregated`` row) of ``*_stats.csv``; latencies in ms, None where N/A."""

    type: str | None
    name: str
    requests: int
    failures: int
    median_ms: float | None
    mean_ms: float | None
    min_ms: float | None
    max_ms: float | None
    avg_content_size_b: float | None
    requests_per_s: float
    failures_per_s: float | None
    percentiles_ms: Mapping[str, float | None] = field(default_factory=dict)  # "99.9" -> value

    @property
    def aggregated(self) -> bool:
        return self.name == AGGREGATED and not self.type

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def _float(token: str, line_no: int, line: str, *, optional: bool = True) -> float | None:
    token = token.strip()
    if token in {"", "N/A"} and optional:
        return None
    return number(_TOOL, token, line_no, line)


def parse_locust_stats_csv(text: str) -> tuple[LocustStatsRow, ...]:
    """Rows of a locust ``--csv`` ``*_stats.csv`` file, in file order (the Aggregated row last, as locust writes)."""
    raw_lines = text.splitlines()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise parse_error(_TOOL, "empty stats file", 1, "")
    header = [h.strip() for h in rows[0]]
    index: dict[str, int] = {}
    for key, names in _COLUMNS.items():
        for name in names:
            if name in header:
                index[key] = header.index(name)
                break
    missing = [k for k in _REQUIRED if k not in index]
    if missing:
        raise parse_error(_TOOL, f"header lacks columns {[_COLUMNS[k][0] for k in missing]}", 1, raw_lines[0])
    pct_columns = [(i, h[:-1]) for i, h in enumerate(header) if h.endswith("%") and is_number(h[:-1])]
    out: list[LocustStatsRow] = []
    for line_no, row in enumerate(rows[1:], start=2):
        line = raw_lines[line_no - 1] if line_no - 1 < len(raw_lines) else ",".join(row)
        if len(row) != len(header):
            raise parse_error(_TOOL, f"row has {len(row)} fields, the header {len(header)}", line_no, line)

        def cell(key: str, row: list[str] = row) -> str:
            return row[index[key]] if key in index else ""

        requests = _float(cell("requests"), line_no, line, optional=False)
        failures = _float(cell("failures"), line_no, line, optional=False)
        rps = _float(cell("rps"), line_no, line, optional=False)
        assert requests is not None and failures is not None and rps is not None
        out.append(
            LocustStatsRow(
                type=cell("type").strip() or None,
                name=cell("name"),
                requests=int(requests),
                failures=int(failures),
                median_ms=_float(cell("median"), line_no, line),
                mean_ms=_float(cell("mean"), line_no, line),
                min_ms=_float(cell("min"), line_no, line),
                max_ms=_float(cell("max"), line_no, line),
                avg_content_size_b=_float(cell("content"), line_no, line),
                requests_per_s=rps,
                failures_per_s=_float(cell("fps"), line_no, line),
                percentiles_ms={percentile_text(q): _float(row[i], line_no, line) for i, q in pct_columns},
            )
        )
    return tuple(out)


def _endpoint_labels(method: str | None, name: str, extra: Mapping[str, str]) -> dict[str, str]:
    labels = {**extra, "endpoint": name}
    if method:
        labels["method"] = method
    return labels


def locust_measurements(
    rows: Iterable[LocustStatsRow], *, extra_labels: Mapping[str, str] | None = None
) -> list[Measurement]:
    """Measurements of every CSV row (see the module docstring for names and labels)."""
    out: list[Measurement] = []
    for row in rows:
        labels = _endpoint_labels(row.type, row.name, extra_labels or {})
        stats = (("median", row.median_ms), ("mean", row.mean_ms), ("min", row.min_ms), ("max", row.max_ms))
        out += stat_measurements("latency", "ms", stats=stats, percentiles=row.percentiles_ms.items(), labels=labels)
        out.append(Measurement(metric="requests_per_s", value=row.requests_per_s, unit="req/s", labels=labels))
        out.append(Measurement(metric="requests", value=row.requests, unit="count", labels=labels))
        out.append(Measurement(metric="failures", value=row.failures, unit="count", labels=labels))
        out.append(Measurement(metric="failure_ratio", value=100.0 * row.failure_ratio, unit="%", labels=labels))
    return out


# --- stats history (--csv with --csv-full-history, or the Aggregated rows alone) -----------------------------

_HISTORY = "locust stats history"
_HISTORY_COLUMNS = ("Timestamp", "User Count", "Name", "Total Request Count", "Total Failure Count")


def is_locust_stats_history(text: str) -> bool:
    """True when the first line is a ``*_stats_history.csv`` header."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    return all(column in first for column in _HISTORY_COLUMNS)


def locust_history_measurements(text: str, *, extra_labels: Mapping[str, str] | None = None) -> list[Measurement]:
    """Measurements of a locust ``*_stats_history.csv``: one sample per second per endpoint, with running totals.

    The last row of each endpoint holds the run's totals: ``requests``, ``failures`` (count), ``error_rate`` (%),
    and ``e2e_latency`` (ms: locust times a request from send to the end of the response, our e2e; ``stat=mean``,
    ``min``, ``max`` and the median as ``percentile=50``). ``requests_per_s`` is the growth of the total between
    the first and the last sample with users running, over the time between them: the per-row ``Requests/s``
    and percentile columns describe a sliding window, not the run, and are not exported. Labels ``tool``,
    ``endpoint`` (Name) and ``method`` (Type, when not empty) as for ``*_stats.csv``.
    """
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if any(cell.strip() for cell in r)]
    raw_lines = text.splitlines()
    if not rows or not is_locust_stats_history(",".join(rows[0])):
        raise parse_error(
            _HISTORY,
            f"not a stats history (header needs {list(_HISTORY_COLUMNS)})",
            1,
            raw_lines[0] if raw_lines else "",
        )
    header = [h.strip() for h in rows[0]]
    col = {name: header.index(name) for name in header}
    needed = [
        "Timestamp", "User Count", "Type", "Name", "Total Request Count", "Total Failure Count",
        "Total Median Response Time", "Total Average Response Time", "Total Min Response Time",
        "Total Max Response Time",
    ]  # fmt: skip
    missing = [n for n in needed if n not in col]
    if missing:
        raise parse_error(_HISTORY, f"header lacks columns {missing}", 1, raw_lines[0])
    series: dict[tuple[str, str], list[tuple[float, int, list[str]]]] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        line = raw_lines[line_no - 1] if line_no - 1 < len(raw_lines) else ",".join(row)
        if len(row) != len(header):
            raise parse_error(_HISTORY, f"row has {len(row)} fields, the header {len(header)}", line_no, line)
        stamp = _float(row[col["Timestamp"]], line_no, line, optional=False)
        users = _float(row[col["User Count"]], line_no, line, optional=False)
        assert stamp is not None and users is not None
        series.setdefault((row[col["Type"]].strip(), row[col["Name"]]), []).append((stamp, int(users), row))
    out: list[Measurement] = []
    for (method, name), samples in series.items():
        labels = {"tool": "locust", **_endpoint_labels(method or None, name, extra_labels or {})}
        _, _, last = samples[-1]
        total = float(last[col["Total Request Count"]])
        failed = float(last[col["Total Failure Count"]])
        out.append(Measurement(metric="requests", value=total, unit="count", labels=labels))
        out.append(Measurement(metric="failures", value=failed, unit="count", labels=labels))
        if total:
            out.append(Measurement(metric="error_rate", value=100.0 * failed / total, unit="%", labels=labels))
            for column, extra in (
                ("Total Average Response Time", {"stat": "mean"}),
                ("Total Min Response Time", {"stat": "min"}),
                ("Total Max Response Time", {"stat": "max"}),
                ("Total Median Response Time", {"stat": "percentile", "percentile": "50"}),
            ):
                value = float(last[col[column]])
                out.append(Measurement(metric="e2e_latency", value=value, unit="ms", labels={**labels, **extra}))
        running = [(t, float(r[col["Total Request Count"]])) for t, users, r in samples if users > 0]
        if len(running) >= 2 and running[-1][0] > running[0][0]:
            rate = (running[-1][1] - running[0][1]) / (running[-1][0] - running[0][0])
            out.append(Measurement(metric="requests_per_s", value=rate, unit="req/s", labels=labels))
    return out


# --- raw samples -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RawSample:
    """One request as our load scripts record it: ``t`` epoch seconds, latencies in ms, ``tokens`` generated."""

    t: float
    name: str
    ok: bool
    latency_ms: float
    ttft_ms: float | None = None
    tokens: int | None = None


_RAW_KEYS = frozenset({"t", "name", "ok", "latency_ms", "ttft_ms", "tokens"})


def parse_raw_samples(text: str) -> tuple[RawSample, ...]:
    """Samples from JSON lines ``{"t", "name", "ok", "latency_ms", "ttft_ms"|null, "tokens"|null}``; blank lines
    are skipped, anything else malformed is a ParseError naming the line."""
    out: list[RawSample] = []
    for line_no, line, obj in json_lines(text, _RAW):
        if not isinstance(obj, dict):
            raise parse_error(_RAW, "each line must be a JSON object", line_no, line)
        missing = {"t", "name", "ok", "latency_ms"} - set(obj)
        unknown = set(obj) - _RAW_KEYS
        if missing or unknown:
            what = f"missing {sorted(missing)}" if missing else f"unknown keys {sorted(unknown)}"
            raise parse_error(_RAW, what, line_no, line)
        ttft, tokens = obj.get("ttft_ms"), obj.get("tokens")
        if (
            not is_finite(obj["t"])
            or not isinstance(obj["name"], str)
            or not isinstance(obj["ok"], bool)
            or not is_finite(obj["latency_ms"])
            or obj["latency_ms"] < 0
            or (ttft is not None and (not is_finite(ttft) or ttft < 0))
            or (tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0))
        ):
            raise parse_error(_RAW, "wrong type or negative value", line_no, line)
        out.append(
            RawSample(
                t=float(obj["t"]),
                name=obj["name"],
                ok=obj["ok"],
                latency_ms=float(obj["latency_ms"]),
                ttft_ms=float(ttft) if ttft is not None else None,
                tokens=tokens,
            )
        )
    if not out:
        raise parse_error(_RAW, "no samples", None, text[:80] or "<empty>")
    return tuple(out)


def raw_sample_measurements(
    samples: Sequence[RawSample],
    *,
    qs: Sequence[float] = (50, 90, 95, 99, 99.9),
    extra_labels: Mapping[str, str] | None = None,
) -> list[Measurement]:
    """Per endpoint name and ``Aggregated``: exact ``latency``/``ttft`` percentiles and mean over successful
    requests (a fast error page must not improve the latency), ``requests``, ``failures``, ``failure_ratio``, and
    ``requests_per_s``/``tokens_per_s`` over the span from the first to the last sample time (omitted when the span
    is zero)."""
    groups: dict[str, list[RawSample]] = {}
    for s in samples:
        groups.setdefault(s.name, []).append(s)
    groups[AGGREGATED] = list(samples)
    out: list[Measurement] = []
    for name, group in groups.items():
        labels = {**(extra_labels or {}), "endpoint": name}
        ok = [s for s in group if s.ok]
        failures = len(group) - len(ok)
        out.append(Measurement(metric="requests", value=len(group), unit="count", labels=labels))
        out.append(Measurement(metric="failures", value=failures, unit="count", labels=labels))
        out.append(Measurement(metric="failure_ratio", value=100.0 * failures / len(group), unit="%", labels=labels))
        for metric, values in (
            ("latency", [s.latency_ms for s in ok]),
            ("ttft", [s.ttft_ms for s in ok if s.ttft_ms is not None]),
        ):
            if not values:
                continue
            out.append(
                Measurement(
                    metric=metric, value=sum(values) / len(values), unit="ms", labels={**labels, "stat": "mean"}
                )
            )
            out += percentile_measurements(metric, "ms", values, qs, method=Method.LINEAR, labels=labels)
        span = max(s.t for s in group) - min(s.t for s in group)
        if span > 0:
            out.append(Measurement(metric="requests_per_s", value=len(group) / span, unit="req/s", labels=labels))
            tokens = [s.tokens for s in ok if s.tokens is not None]
            if tokens:
                out.append(Measurement(metric="tokens_per_s", value=sum(tokens) / span, unit="tok/s", labels=labels))
    return out
