"""``redis-benchmark --csv`` output (Redis 2.x to 7.x).

Two eras of the CSV:

- **Redis 6.2 and later** (the hdr_histogram rewrite) print a header line and eight columns per test::

      "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
      "SET","56657.23","0.795","0.072","0.727","1.343","1.863","6.255"

- **Redis 6.0 and earlier** print no header and two columns, ``printf("\\"%s\\",\\"%.2f\\"\\n", title, reqpersec)``::

      "SET","40160.64"

Columns are found by name when there is a header (``test`` and ``rps`` required; ``avg``/``min``/``max`` and every
``p<N>_latency_ms`` read when present, unknown extra columns ignored); header-less rows must have exactly two
fields. Test names are kept as printed (``GET``, ``MSET (10 keys)``, ``LRANGE_100 (first 100 elements)``).

Lines before the first CSV row are tolerated and kept as ``notes``: a pod log joins stdout and stderr, and
redis-benchmark writes ``WARNING: Could not fetch server CONFIG`` when the server refuses CONFIG (managed Redis
services do). After the first row every non-empty line must be a row of the same shape. Output without any row
(``Could not connect to Redis at ...: Connection refused``, or a run without ``--csv``) is a ParseError quoting
the last line the tool printed, which is usually the reason.

Metric scheme (identity in labels, DESIGN.md section 1), label ``op`` = the test name:

- ``ops_per_s`` in req/s (redis-benchmark's "requests per second" of that test);
- ``latency`` in ms with ``stat=mean|min|max`` or ``stat=percentile`` + ``percentile=50|95|99`` (Redis >= 6.2).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.measurement import Measurement
from harness.parsers._lines import parse_error
from harness.statistics import percentile_text, stat_measurements

__all__ = ["RedisBenchmarkResult", "RedisBenchmarkRow", "parse_redis_benchmark", "redis_benchmark_measurements"]

_TOOL = "redis-benchmark csv"
_STATS = {"avg_latency_ms": "mean", "min_latency_ms": "min", "max_latency_ms": "max"}
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)_latency_ms")


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisBenchmarkRow:
    """One test: requests per second and, from Redis 6.2 on, latencies in ms."""

    test: str
    requests_per_s: float
    latency_ms: Mapping[str, float] = field(default_factory=dict)  # "mean" | "min" | "max" -> ms
    percentiles_ms: Mapping[str, float] = field(default_factory=dict)  # "99" -> ms


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisBenchmarkResult:
    """The rows in output order, whether a header was present, and the non-CSV lines before the first row."""

    rows: tuple[RedisBenchmarkRow, ...]
    has_header: bool
    notes: tuple[str, ...] = ()

    def row(self, test: str) -> RedisBenchmarkRow:
        for row in self.rows:
            if row.test == test:
                return row
        raise KeyError(f"no redis-benchmark test {test!r} (tests: {[r.test for r in self.rows]})")


def _fields(line: str) -> list[str] | None:
    """The CSV fields of ``line`` when it is a redis-benchmark row (every field double-quoted), else None."""
    stripped = line.strip()
    if not (stripped.startswith('"') and stripped.endswith('"')):
        return None
    fields = next(csv.reader([stripped]))
    return fields if len(fields) >= 2 else None


def _number(text: str, column: str, line_no: int, line: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise parse_error(_TOOL, f"column {column!r} is not a number: {text!r}", line_no, line) from None
    if not math.isfinite(value) or value < 0:
        raise parse_error(_TOOL, f"column {column!r} must be a finite number >= 0, got {text!r}", line_no, line)
    return value


def parse_redis_benchmark(text: str) -> RedisBenchmarkResult:
    """Parse the stdout (or joined pod log) of ``redis-benchmark --csv``."""
    lines = text.splitlines()
    notes: list[str] = []
    header: list[str] | None = None
    rows: list[RedisBenchmarkRow] = []
    width = 0
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = _fields(line)
        started = header is not None or bool(rows)
        if fields is None:
            if started:
                raise parse_error(_TOOL, "not a CSV row of double-quoted fields", line_no, line)
            notes.append(line.strip())
            continue
        if fields[0] == "test" and not started:
            if "rps" not in fields:
                raise parse_error(_TOOL, "the header lacks the 'rps' column", line_no, line)
            if len(set(fields)) != len(fields):
                raise parse_error(_TOOL, "the header repeats a column", line_no, line)
            header, width = fields, len(fields)
            continue
        if fields[0] == "test":
            raise parse_error(_TOOL, "a second header (two runs in one output?)", line_no, line)
        if not started:
            width = 2  # Redis <= 6.0: no header, "test","rps"
            if len(fields) != width:
                raise parse_error(
                    _TOOL, f"a row without a header must have 2 fields (test, rps), got {len(fields)}", line_no, line
                )
        if len(fields) != width:
            raise parse_error(_TOOL, f"expected {width} fields as in the first line, got {len(fields)}", line_no, line)
        columns = dict(zip(header or ["test", "rps"], fields, strict=True))
        test = columns["test"].strip()
        if not test:
            raise parse_error(_TOOL, "empty test name", line_no, line)
        if any(r.test == test for r in rows):
            raise parse_error(_TOOL, f"test {test!r} reported twice (loop mode -l?)", line_no, line)
        latency: dict[str, float] = {}
        percentiles: dict[str, float] = {}
        for column, value in columns.items():
            if column in _STATS:
                latency[_STATS[column]] = _number(value, column, line_no, line)
            elif match := _PERCENTILE.fullmatch(column):
                percentiles[percentile_text(match.group(1))] = _number(value, column, line_no, line)
        rows.append(
            RedisBenchmarkRow(
                test=test,
                requests_per_s=_number(columns["rps"], "rps", line_no, line),
                latency_ms=latency,
                percentiles_ms=percentiles,
            )
        )
    if not rows:
        if header is not None:
            raise parse_error(_TOOL, "a header but no result rows (the run stopped before any test finished?)")
        last = notes[-1] if notes else ""
        where = next((i for i in range(len(lines), 0, -1) if lines[i - 1].strip()), 1)
        raise parse_error(_TOOL, "no CSV result rows (was --csv given, and did the server answer?)", where, last)
    return RedisBenchmarkResult(rows=tuple(rows), has_header=header is not None, notes=tuple(notes))


def redis_benchmark_measurements(
    result: RedisBenchmarkResult, labels: Mapping[str, str] | None = None
) -> list[Measurement]:
    """``ops_per_s`` and ``latency`` measurements per test (see the module docstring), ``labels`` added to each."""
    extra = dict(labels or {})
    out: list[Measurement] = []
    for row in result.rows:
        base = {**extra, "op": row.test}
        out.append(Measurement(metric="ops_per_s", value=row.requests_per_s, unit="req/s", labels=base))
        stats = [(stat, row.latency_ms.get(stat)) for stat in ("mean", "min", "max")]
        out += stat_measurements("latency", "ms", stats=stats, percentiles=row.percentiles_ms.items(), labels=base)
    return out
