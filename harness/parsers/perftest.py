"""linux-rdma perftest (``ib_write_bw``, ``ib_read_bw``, ``ib_send_bw``, ``ib_*_lat``) stdout.

Why a dedicated parser: perftest prints a settings box (device, link type, MTU, connection type), then one result
table whose columns depend on the test family and on ``--report_gbits`` (``BW peak[MB/sec]`` or
``BW peak[Gb/sec]``); server and client outputs are often concatenated, and the boxes contain literal TABs. The
column header is read, never assumed, and the unit comes from it.

Tables:

- bandwidth: ``#bytes #iterations BW peak[X] BW average[X] MsgRate[Mpps]`` (X = MB/sec, MiB/sec or Gb/sec);
- latency: ``#bytes #iterations t_min[usec] t_max[usec] t_typical[usec] t_avg[usec] t_stdev[usec]
  99% percentile[usec] 99.9% percentile[usec]`` (older builds stop after ``t_typical``).

Measurements: bandwidth tests give ``<test>`` (e.g. ``ib_write_bw``) = BW average in Gbit/s (MB/sec is 1e6 B/s
in perftest, so x 8e-3) plus ``<test>_peak`` (the message rate stays in the parsed rows); latency tests give
``<test>`` = t_typical (us, perftest's median) and ``<test>_avg``/``_p99``/``_p999``/``_max``. Labels: ``size``
(bytes), ``device``, ``link``, ``side`` (``server`` for a table preceded by perftest's "Waiting for client to
connect..." box, which only the server prints, else ``client``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.errors import ParseError
from harness.measurement import Measurement
from harness.parsers._lines import parse_error

__all__ = ["PerftestResult", "PerftestRow", "parse_perftest", "perftest_measurements"]

_TOOL = "perftest"
# "RDMA_Write BW Test", and variants with words before BW/Latency: "RDMA_Write Post List BW Test" (--post_list),
# "RDMA_Write Bidirectional BW Test" (-b), "Send BW Multicast Test"-style suffixes are not results we read.
_TITLE = re.compile(
    r"^\s*(RDMA_Write_Imm|RDMA_Write|RDMA_Read|Send|Atomic \w+)\s+"
    r"(?:(?:Post List|Bidirectional)\s+)?(BW|Latency)\s+Test\s*$",
    re.I,
)
_SETTING = re.compile(r"([A-Za-z][\w .*-]*?)\s*:\s*(\S.*?)\s*(?=\t|\s{2,}[A-Za-z][\w .*-]*?\s*:|$)")
_BW_UNIT = re.compile(r"BW\s+average\[(MB/sec|MiB/sec|Gb/sec)\]", re.I)
_TO_GBITS = {"mb/sec": 8e-3, "mib/sec": 8 * 1.048576e-3, "gb/sec": 1.0}
_TESTS = {"rdma_write": "write", "rdma_read": "read", "send": "send", "rdma_write_imm": "write_imm"}


@dataclass(frozen=True, slots=True, kw_only=True)
class PerftestRow:
    size: int
    iterations: int
    values: Mapping[str, float]  # column name -> value (bw_peak, bw_avg, msg_rate | t_min, t_typical, ...)
    line_no: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PerftestResult:
    """One result table with the settings printed above it."""

    test: str  # ib_write_bw, ib_read_lat, ...
    kind: str  # bw | lat
    settings: Mapping[str, str] = field(default_factory=dict)
    rows: tuple[PerftestRow, ...] = ()
    unit: str = ""  # bandwidth unit as printed (MB/sec, Gb/sec); "usec" for latency
    side: str = "client"  # "server" when the server's "Waiting for client to connect" box preceded the table

    @property
    def device(self) -> str:
        return self.settings.get("Device", "")

    @property
    def link_type(self) -> str:
        return self.settings.get("Link type", "")


def _test_name(title: re.Match[str]) -> tuple[str, str]:
    op = title.group(1).lower().replace(" ", "_")
    kind = "bw" if title.group(2).upper() == "BW" else "lat"
    return f"ib_{_TESTS.get(op, op)}_{kind}", kind


def _bw_columns(header: str, line_no: int) -> tuple[str, float]:
    match = _BW_UNIT.search(header)
    if not match:
        raise parse_error(_TOOL, "bandwidth header without a 'BW average[unit]' column", line_no, header)
    return match.group(1), _TO_GBITS[match.group(1).lower()]


def _lat_columns(header: str) -> list[str]:
    names = []
    for token in re.findall(r"(t_\w+|99(?:\.9)?% percentile)\[usec\]", header):
        names.append({"99% percentile": "p99", "99.9% percentile": "p999"}.get(token, token))
    return names


@dataclass(slots=True)
class _Open:
    """A result table being read: its header is seen, its rows are arriving."""

    test: str
    kind: str
    settings: dict[str, str]
    header: str
    unit: str
    factor: float
    lat_cols: list[str]
    side: str
    rows: list[PerftestRow] = field(default_factory=list)


def _settings(raw: str) -> list[tuple[str, str]]:
    """``key : value`` pairs of one settings-box line. Two pairs share a line, separated by TABs (most builds) or
    by a run of spaces (older builds, and logs whose TABs were expanded: ``Dual-port       : OFF          Device
    : mlx5_0``), so a value ends at a TAB or where spaces lead to the next ``key :``."""
    return [(k.strip(), v.strip()) for k, v in _SETTING.findall(raw)]


def _row(table: _Open, line: str, line_no: int, raw: str) -> PerftestRow:
    try:
        numbers = [float(t) for t in line.split()]
    except ValueError:
        raise parse_error(_TOOL, "non-numeric value in a result row", line_no, raw) from None
    if table.kind == "bw":
        if len(numbers) < 4:
            raise parse_error(_TOOL, "bandwidth row needs bytes, iterations, peak and average", line_no, raw)
        values = {"bw_peak": numbers[2] * table.factor, "bw_avg": numbers[3] * table.factor}
        if len(numbers) > 4:
            values["msg_rate"] = numbers[4]
    else:
        if len(numbers) < 2 + len(table.lat_cols):
            raise parse_error(_TOOL, f"latency row needs {2 + len(table.lat_cols)} values", line_no, raw)
        values = dict(zip(table.lat_cols, numbers[2:], strict=False))
    return PerftestRow(size=int(numbers[0]), iterations=int(numbers[1]), values=values, line_no=line_no)


def parse_perftest(text: str) -> list[PerftestResult]:
    """Every result table in ``text`` in order (a concatenated server+client log gives two).

    Server and client captured together (both in one pod, ``ib_write_bw & ib_write_bw localhost``) interleave
    line by line: both boxes, then both ``#bytes`` headers, then the rows. A header that arrives while another
    table still waits for its rows opens a second table; rows go to the open table with the fewest rows (the two
    sides print in lockstep), and the side is the order of opening after perftest's "Waiting for client to
    connect..." box, which only the server prints.
    """
    results: list[PerftestResult] = []
    test, kind = "", ""
    settings: dict[str, str] = {}
    tables: list[_Open] = []
    waiting = 0  # "Waiting for client" boxes not yet matched to a table

    def close(table: _Open) -> None:
        if not table.rows:
            raise parse_error(_TOOL, f"{table.test}: result header without any result row", None, table.header)
        tables.remove(table)
        results.append(
            PerftestResult(
                test=table.test,
                kind=table.kind,
                settings=dict(table.settings),
                rows=tuple(table.rows),
                unit=table.unit,
                side=table.side,
            )
        )

    def close_with_rows() -> None:
        for table in [t for t in tables if t.rows]:
            close(table)

    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if "Waiting for client to connect" in line:
            close_with_rows()
            waiting += 1
            continue
        if title := _TITLE.match(raw):
            close_with_rows()
            (test, kind), settings = _test_name(title), {}
            continue
        if not test:
            continue
        if line.startswith("#bytes"):
            close_with_rows()
            unit, factor, lat_cols = "usec", 1.0, []
            if kind == "bw":
                unit, factor = _bw_columns(line, line_no)
            else:
                lat_cols = _lat_columns(line)
                if "t_typical" not in lat_cols:
                    raise parse_error(_TOOL, "latency header without t_typical[usec]", line_no, raw)
            side = "server" if waiting else "client"
            waiting = max(0, waiting - 1)
            tables.append(_Open(test, kind, dict(settings), line, unit, factor, lat_cols, side))
            continue
        if tables and line and line[0].isdigit():
            table = min(tables, key=lambda t: len(t.rows))
            table.rows.append(_row(table, line, line_no, raw))
            continue
        if tables and line.startswith("---"):
            close_with_rows()
            continue
        if not tables:
            for key, value in _settings(raw):
                settings.setdefault(key, value)
    for table in list(tables):
        close(table)
    if not results:
        if not test:
            raise ParseError(f"{_TOOL}: no test title (e.g. 'RDMA_Write BW Test') in the output")
        raise ParseError(f"{_TOOL}: {test}: no result table ('#bytes #iterations ...') in the output")
    return results


def perftest_measurements(
    results: list[PerftestResult], *, extra_labels: Mapping[str, str] | None = None
) -> list[Measurement]:
    """Headline and detail measurements per row; ``side`` labels server/client when a log holds two tables."""
    out: list[Measurement] = []
    sides = {r.side for r in results}
    for result in results:
        base = {**dict(extra_labels or {}), "test": result.test}
        if result.device:
            base["device"] = result.device
        if result.link_type:
            base["link"] = result.link_type
        if len(sides) > 1 or result.side == "server":
            base["side"] = result.side
        for row in result.rows:
            labels = {**base, "size": str(row.size)}
            if result.kind == "bw":
                out.append(Measurement(metric=result.test, value=row.values["bw_avg"], unit="Gbit/s", labels=labels))
                out.append(
                    Measurement(metric=f"{result.test}_peak", value=row.values["bw_peak"], unit="Gbit/s", labels=labels)
                )
            else:
                out.append(Measurement(metric=result.test, value=row.values["t_typical"], unit="us", labels=labels))
                for column, suffix in (("t_avg", "avg"), ("p99", "p99"), ("p999", "p999"), ("t_max", "max")):
                    if column in row.values:
                        out.append(
                            Measurement(
                                metric=f"{result.test}_{suffix}", value=row.values[column], unit="us", labels=labels
                            )
                        )
    return out
