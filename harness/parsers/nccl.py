"""NVIDIA nccl-tests (``all_reduce_perf`` & co.): stdout tables, the ``-J`` JSON file, and NCCL's transports.

Why this parser is lenient about layout and strict about numbers: the table changed across nccl-tests eras and
logs arrive mixed with other output, yet a misread number would silently pass or fail a bar.

Handled table eras (column names are read from the header line, not assumed):

- ~2019-2020: ``size count type redop time algbw busbw error ...`` (no ``root``; ``error`` holds a max error or N/A);
- 2021+: ``size count type redop root time algbw busbw #wrong ...``;
- 2025+: optional per-iteration columns (``-I``: ``i_min i_max i_p99 i_cv%``) and a trailing ``timestamp``;
- Rank lines with or without ``Group``, bus ids as ``[0x07]`` or ``[0000:07:00]``;
- ``NCCL INFO``/``WARN`` lines and anything else interleaved, ``mpirun --tag-output`` prefixes (``[1,0]<stdout>:``),
  ``N/A`` in the wrong/error column (validation off, ``-c 0``), ``FAILED`` in the footer.

Metric scheme (DESIGN.md sections 1 and 6), per row and placement (labels ``op``, ``dtype``, ``size`` in bytes,
``placement=out-of-place|in-place``, plus ``redop``/``root``/``nranks`` when known):
``busbw`` and ``algbw`` in GB/s (1e9 B/s, as nccl-tests prints), ``time`` in us, and ``wrong`` (count, ``#wrong``
era) or ``max_error`` (ratio, ``error`` era) when not N/A. Per table: ``busbw_avg`` (GB/s; informational only, bars
use :func:`large_message_busbw`), ``oob_values`` (count).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from harness.errors import ParseError
from harness.measurement import Measurement
from harness.parsers._lines import json_document, line_at, parse_error
from harness.parsers._numbers import is_number, number

__all__ = [
    "NcclResult",
    "NcclRow",
    "Placement",
    "PlacementResult",
    "RankDevice",
    "Transport",
    "large_message_busbw",
    "nccl_measurements",
    "op_name",
    "parse_nccl_tests",
    "parse_nccl_tests_all",
    "parse_nccl_tests_json",
    "transports",
]

_TOOL = "nccl-tests"
Placement = Literal["out-of-place", "in-place"]
PLACEMENTS: tuple[Placement, Placement] = ("out-of-place", "in-place")


@dataclass(frozen=True, slots=True, kw_only=True)
class RankDevice:
    """One ``#  Rank N [Group G] Pid P on HOST device D [BUSID] NAME`` line."""

    rank: int
    group: int | None
    pid: int
    host: str
    device: int
    busid: str
    name: str


class PlacementResult(NamedTuple):
    """time (us), algbw and busbw (GB/s), wrong (``#wrong`` count or ``error`` max error; None when N/A).

    A NamedTuple rather than a frozen dataclass (DESIGN.md section 8) on purpose: a 10,000-row log builds 20,000 of
    these, and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) alone took longer than the
    whole 50 ms parse budget. It is just as immutable and typed.
    """

    time_us: float
    algbw_gbps: float
    busbw_gbps: float
    wrong: float | None
    per_iter_us: Mapping[str, float] = MappingProxyType({})  # -I columns: i_min, i_max, i_p99, i_cv%


class NcclRow(NamedTuple):
    """One message size. ``out_of_place`` is None for in-place-only rows (trace replay). A NamedTuple for the same
    reason as :class:`PlacementResult`."""

    size: int
    count: int  # type: ignore[assignment]  # nccl-tests' column name; shadows tuple.count, never called on a row
    dtype: str
    redop: str | None
    root: int | None
    out_of_place: PlacementResult | None
    in_place: PlacementResult | None
    line_no: int = 0

    def placement(self, which: Placement) -> PlacementResult | None:
        return self.out_of_place if which == "out-of-place" else self.in_place


@dataclass(frozen=True, slots=True, kw_only=True)
class NcclResult:
    """One nccl-tests table with its header facts and footer."""

    program: str | None  # e.g. "all_reduce_perf", from the log or the caller
    version: str | None  # "# nccl-tests version 2.19.7 ..." when printed
    params: Mapping[str, str]  # the "# nThread 1 nGpus 8 minBytes ..." line
    ranks: tuple[RankDevice, ...]
    rows: tuple[NcclRow, ...]
    wrong_column: str  # "#wrong" or "error" (older) or "res" (oldest)
    avg_busbw_gbps: float | None
    oob_count: int | None
    oob_ok: bool | None
    avg_bw_check: str | None = None  # "OK" / "FAILED" with NCCL_TESTS_MIN_BW, else None
    declared_nranks: int | None = None  # NCCL's own count ("... rank 3 nranks 256 ... Init COMPLETE")

    @property
    def op(self) -> str | None:
        return op_name(self.program) if self.program else None

    @property
    def nranks(self) -> int | None:
        """The communicator size. Not the number of printed ``Rank`` lines: large jobs elide or cut them (a
        ``tail`` of the log, nccl-tests' own 2,048-byte limit per process, a log collector's line cap), and the
        profiles' bars select by nranks. NCCL's ``nranks N`` (INFO Init lines) wins; else the highest printed rank
        + 1 (ranks are numbered densely from 0), which still counts ranks whose lines were dropped before it."""
        candidates = [self.declared_nranks or 0, len(self.ranks)]
        candidates += [r.rank + 1 for r in self.ranks]
        return max(candidates) or None

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.host for r in self.ranks))


def op_name(program: str) -> str:
    """``all_reduce`` from ``/opt/nccl-tests/build/all_reduce_perf_mpi`` (the ``op`` label of measurements)."""
    name = program.rsplit("/", 1)[-1]
    for suffix in ("_mpi", "_perf"):
        name = name.removesuffix(suffix)
    return name


_PREFIX = re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:")
_RANK = re.compile(
    r"^#\s*Rank\s+(?P<rank>\d+)(?:\s+Group\s+(?P<group>\d+))?\s+Pid\s+(?P<pid>\d+)\s+on\s+(?P<host>\S+)"
    r"\s+device\s+(?P<device>\d+)\s+\[(?P<busid>[^\]]*)\]\s*(?P<name>.*?)\s*$"
)
_PARAM = re.compile(r"([A-Za-z][A-Za-z ]*?):?\s+(-?\d+(?:\([a-z]+\))?)")
_OOB = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d+)\s*(\w+)?")
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*(\S+)\s*(\w+)?")
_CONCLUDED = re.compile(r"^#\s*Collective test (?:concluded|starting):\s*(\S+)")
_VERSION = re.compile(r"^#\s*nccl-tests version\s+(\S+)")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NRANKS = re.compile(r"\bnranks (\d+)\b")
# Lines nccl-tests printed without the leading "#" before ~2020 (" Out of bounds values : 2 FAILED", the column
# header "   size   count   type ...", "nThread 1 nGpus 8 ...", "   Rank  0 Pid ..."): read as if they had it.
_UNHASHED = ("size ", "Out of bounds values", "Avg bus bandwidth", "nThread ", "Rank ", "Using devices")
_KEY_NAMES = {
    "size": "size",
    "bytes": "size",
    "count": "count",
    "n": "count",
    "type": "type",
    "redop": "redop",
    "op": "redop",
    "root": "root",
}
_TIME_NAMES = ("time", "cputime")


def _strip_prefix(line: str) -> str:
    return _PREFIX.sub("", line, count=1) if line.startswith("[") else line


@dataclass(slots=True)
class _Layout:
    keys: list[str]
    block: list[str]  # names of one placement block: time algbw busbw #wrong [i_min i_max i_p99 i_cv%]
    timestamp: bool
    type_index: int | None = None
    redop_index: int | None = None
    root_index: int | None = None

    def __post_init__(self) -> None:
        for name in ("type", "redop", "root"):
            if name in self.keys:
                setattr(self, f"{name}_index", self.keys.index(name))


def _layout(line: str, line_no: int) -> _Layout | None:
    tokens = line.lstrip("#").split()
    lowered = [t.lower() for t in tokens]
    if "algbw" not in lowered or "busbw" not in lowered:
        return None
    times = [i for i, t in enumerate(lowered) if t in _TIME_NAMES]
    if len(times) < 2:
        raise parse_error(_TOOL, "column header without two time columns", line_no, line)
    keys = [_KEY_NAMES.get(t, t) for t in lowered[: times[0]]]
    if keys[:2] != ["size", "count"]:
        raise parse_error(_TOOL, "column header does not start with size and count", line_no, line)
    block = lowered[times[0] : times[1]]
    rest = lowered[times[1] + len(block) :]
    return _Layout(keys=keys, block=block, timestamp="timestamp" in rest)


_NO_PER_ITER: Mapping[str, float] = MappingProxyType({})


def _placement(tokens: list[str], names: list[str], line_no: int, line: str) -> PlacementResult:
    try:
        time_us, algbw, busbw = float(tokens[0]), float(tokens[1]), float(tokens[2])
        wrong = None if tokens[3] in ("N/A", "n/a") else float(tokens[3])
        per_iter = (
            {name: float(token) for name, token in zip(names[4:], tokens[4:], strict=True)}
            if len(names) > 4
            else _NO_PER_ITER
        )
    except ValueError:
        bad = next(t for t in tokens if t not in ("N/A", "n/a") and not is_number(t))
        raise parse_error(_TOOL, f"not a number: {bad!r}", line_no, line) from None
    return PlacementResult(time_us=time_us, algbw_gbps=algbw, busbw_gbps=busbw, wrong=wrong, per_iter_us=per_iter)


class _ShortRow(ParseError):
    """A row with fewer fields than one placement block: a log cut mid-row (a killed pod, ``kubectl logs
    --limit-bytes``), or a mangled line. Deferred by the caller: fatal when more rows or a footer follow, the cut
    last row of a truncated log otherwise."""


def _row(layout: _Layout, tokens: list[str], line_no: int, line: str) -> NcclRow:
    nkeys, nblock = len(layout.keys), len(layout.block)
    if len(tokens) < nkeys + nblock:  # checked before any column is indexed
        raise _ShortRow(
            parse_error(
                _TOOL,
                f"row has {len(tokens)} fields, the header announces {nkeys + 2 * nblock} (a line cut short)",
                line_no,
                line,
            ).args[0]
        )
    body = tokens[nkeys:]
    if layout.timestamp and len(body) >= 2 and _TIMESTAMP.match(body[-2]):
        body = body[:-2]
    root: int | None = None
    if layout.root_index is not None:
        token = tokens[layout.root_index]
        root = int(token) if token.lstrip("-").isdigit() else None
    dtype = tokens[layout.type_index] if layout.type_index is not None else ""
    redop = tokens[layout.redop_index] if layout.redop_index is not None else None
    if nblock == 4 and len(body) == 8:  # the common layout, inlined: this loop runs once per row of long sweeps
        try:
            w_oop, w_ip = body[3], body[7]
            oop_result = PlacementResult(
                float(body[0]), float(body[1]), float(body[2]), None if w_oop == "N/A" else float(w_oop), _NO_PER_ITER
            )
            ip_result = PlacementResult(
                float(body[4]), float(body[5]), float(body[6]), None if w_ip == "N/A" else float(w_ip), _NO_PER_ITER
            )
            return NcclRow(int(tokens[0]), int(tokens[1]), dtype, redop, root, oop_result, ip_result, line_no)
        except ValueError:
            pass  # the general path below names the offending token
    if len(body) == 2 * nblock:
        oop, ip = body[:nblock], body[nblock:]
    elif len(body) == nblock:
        oop, ip = None, body
    else:
        raise parse_error(
            _TOOL,
            f"row has {len(tokens)} fields, the header announces "
            f"{nkeys + 2 * nblock}{' + timestamp' if layout.timestamp else ''}",
            line_no,
            line,
        )
    return NcclRow(
        size=int(tokens[0]),
        count=int(tokens[1]),
        dtype=dtype,
        redop=redop,
        root=root,
        out_of_place=_placement(oop, layout.block, line_no, line) if oop is not None else None,
        in_place=_placement(ip, layout.block, line_no, line),
        line_no=line_no,
    )


@dataclass(slots=True)
class _Builder:
    start_line: int
    program: str | None = None
    version: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    ranks: list[RankDevice] = field(default_factory=list)
    layout: _Layout | None = None
    header_line: int = 0
    rows: list[NcclRow] = field(default_factory=list)
    oob: tuple[int, bool] | None = None
    avg: tuple[float, str | None] | None = None
    last_line: tuple[int, str] = (0, "")
    nranks: int | None = None
    short_row: _ShortRow | None = None  # a row cut short; fatal unless it is the last thing in the log

    def check_short_row(self) -> None:
        """Something followed a short row, so it was not a cut at the end of the log: it is malformed."""
        if self.short_row is not None:
            raise self.short_row

    @property
    def has_table(self) -> bool:
        return self.layout is not None

    def build(self, *, program: str | None, allow_truncated: bool) -> NcclResult:
        assert self.layout is not None
        truncated = self.oob is None or self.avg is None
        if not self.rows and self.short_row is None:
            raise parse_error(_TOOL, "the result table has no rows", self.header_line, "(header only)")
        if truncated and not allow_truncated:
            if self.short_row is not None:
                raise ParseError(str(self.short_row).replace(f"{_TOOL}: ", f"{_TOOL}: truncated output: ", 1))
            no, text = self.last_line
            raise parse_error(
                _TOOL,
                "truncated output: no '# Out of bounds values' / '# Avg bus bandwidth' footer after the last row",
                no,
                text,
            )
        rows = self.rows
        if truncated and len(rows) > 1 and rows[-1].out_of_place is None and rows[-2].out_of_place is not None:
            rows = rows[:-1]  # cut right after the out-of-place block: it would read as an in-place-only row
        if not rows:
            raise parse_error(_TOOL, "the result table has no rows", self.header_line, "(header only)")
        block = self.layout.block
        return NcclResult(
            program=self.program or program,
            version=self.version,
            params=dict(self.params),
            ranks=tuple(self.ranks),
            rows=tuple(rows),
            wrong_column=block[3] if len(block) > 3 else "#wrong",
            avg_busbw_gbps=self.avg[0] if self.avg else None,
            oob_count=self.oob[0] if self.oob else None,
            oob_ok=self.oob[1] if self.oob else None,
            avg_bw_check=self.avg[1] if self.avg else None,
            declared_nranks=self.nranks,
        )


def _sections(text: str) -> list[_Builder]:
    sections: list[_Builder] = [_Builder(start_line=1)]
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = _strip_prefix(raw).strip()
        if not line:
            continue
        cur = sections[-1]
        if line[0].isdigit():  # the common case first: a data row (or other output starting with a digit)
            layout = cur.layout
            if layout is None or cur.oob is not None:
                continue
            tokens = line.split()
            if len(tokens) >= 2 and tokens[0].isdigit() and tokens[1].isdigit():
                cur.check_short_row()
                try:
                    cur.rows.append(_row(layout, tokens, line_no, raw))
                except _ShortRow as short:
                    cur.short_row = short
                cur.last_line = (line_no, raw)
            continue
        if line.startswith(_UNHASHED):
            line = "# " + line
        elif "NCCL INFO" in line:
            if " nranks " in line and (m := _NRANKS.search(line)):
                cur.nranks = max(cur.nranks or 0, int(m.group(1)))
            continue
        if line.startswith("#"):
            is_preamble = (
                _VERSION.match(line) or line.startswith("# nThread") or (line.startswith("# Collective test starting"))
            )
            if is_preamble and cur.rows:
                cur = _Builder(start_line=line_no)
                sections.append(cur)
            if m := _VERSION.match(line):
                cur.version = m.group(1)
            elif m := _CONCLUDED.match(line):
                cur.program = m.group(1)
            elif line.startswith("# nThread"):
                cur.params = {k.strip().replace(" ", "_"): v for k, v in _PARAM.findall(line[1:])}
            elif m := _RANK.match(line):
                cur.ranks.append(
                    RankDevice(
                        rank=int(m["rank"]),
                        group=int(m["group"]) if m["group"] is not None else None,
                        pid=int(m["pid"]),
                        host=m["host"],
                        device=int(m["device"]),
                        busid=m["busid"],
                        name=m["name"],
                    )
                )
            elif m := _OOB.match(line):
                cur.check_short_row()
                cur.oob = (int(m.group(1)), (m.group(2) or "OK").upper() == "OK")
            elif m := _AVG.match(line):
                cur.avg = (number(_TOOL, m.group(1), line_no, raw), m.group(2))
            elif cur.layout is None and (layout := _layout(line, line_no)) is not None:
                cur.layout, cur.header_line = layout, line_no
    return [s for s in sections if s.has_table]


def parse_nccl_tests_all(text: str, *, program: str | None = None, allow_truncated: bool = False) -> list[NcclResult]:
    """Every nccl-tests table in ``text`` (a log may hold several runs), in order."""
    sections = _sections(text)
    if not sections:
        no, line = line_at(text, len(text.rstrip()))
        raise parse_error(_TOOL, "no result table (no '#  size  count  type ... busbw' header) in the output", no, line)
    return [s.build(program=program, allow_truncated=allow_truncated) for s in sections]


def parse_nccl_tests(text: str, *, program: str | None = None, allow_truncated: bool = False) -> NcclResult:
    """The one nccl-tests table in ``text``. ``program`` (e.g. ``all_reduce_perf``) names the op when the log does
    not (logs before ~2023 print no ``Collective test concluded`` line)."""
    results = parse_nccl_tests_all(text, program=program, allow_truncated=allow_truncated)
    if len(results) != 1:
        first = results[1].rows[0]
        raise parse_error(
            _TOOL, f"{len(results)} result tables; use parse_nccl_tests_all", first.line_no, f"size {first.size}"
        )
    return results[0]


def large_message_busbw(
    result: NcclResult, *, min_size: int = 0, placement: Placement | Literal["max"] = "out-of-place"
) -> float:
    """busbw (GB/s) at the largest message size >= ``min_size``: the number NCCL bars use (DESIGN.md section 6),
    never the "Avg bus bandwidth", which averages in latency-bound small sizes. Raises ParseError when the sweep
    has no row that large (the run did not measure what the bar needs)."""
    rows = [r for r in result.rows if r.size >= min_size]
    if not rows:
        largest = max(r.size for r in result.rows)
        raise ParseError(f"{_TOOL}: no row with size >= {min_size} B (largest measured: {largest} B)")
    row = max(rows, key=lambda r: (r.size, r.line_no))
    if placement == "max":
        values = [p.busbw_gbps for p in (row.out_of_place, row.in_place) if p is not None]
        return max(values)
    chosen = row.placement(placement)
    if chosen is None:
        raise ParseError(f"{_TOOL}: size {row.size} has no {placement} result (line {row.line_no})")
    return chosen.busbw_gbps


def nccl_measurements(result: NcclResult, *, extra_labels: Mapping[str, str] | None = None) -> list[Measurement]:
    """Measurements per row and placement, plus the table's average and out-of-bounds count."""
    base: dict[str, str] = dict(extra_labels or {})
    if result.op:
        base["op"] = result.op
    if result.nranks:
        base["nranks"] = str(result.nranks)
    out: list[Measurement] = []
    wrong_metric, wrong_unit = ("wrong", "count") if result.wrong_column == "#wrong" else ("max_error", "ratio")
    for row in result.rows:
        labels = {**base, "dtype": row.dtype, "size": str(row.size)}
        if row.redop is not None:
            labels["redop"] = row.redop
        if row.root is not None:
            labels["root"] = str(row.root)
        for which in PLACEMENTS:
            p = row.placement(which)
            if p is None:
                continue
            here = {**labels, "placement": which}
            for metric, value, unit in (
                ("busbw", p.busbw_gbps, "GB/s"),
                ("algbw", p.algbw_gbps, "GB/s"),
                ("time", p.time_us, "us"),
                (wrong_metric, p.wrong, wrong_unit),
            ):
                if value is not None and math.isfinite(value):
                    out.append(Measurement(metric=metric, value=value, unit=unit, labels=here))
    if result.avg_busbw_gbps is not None and math.isfinite(result.avg_busbw_gbps):
        out.append(Measurement(metric="busbw_avg", value=result.avg_busbw_gbps, unit="GB/s", labels=base))
    if result.oob_count is not None:
        out.append(Measurement(metric="oob_values", value=result.oob_count, unit="count", labels=base))
    return out


# --- the -J / --output_file JSON (nccl-tests src/util.cu, JSON_FILE_VERSION 2) ------------------------------------


def _json_number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):  # jsonDouble writes NaN as the string "nan"
        return float(value) if value.strip().lower() in {"nan", "inf", "-inf"} else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _json_placement(obj: Any, per_iter: Any) -> PlacementResult | None:
    if not isinstance(obj, dict):
        return None
    time = _json_number(obj.get("time", obj.get("cpu_time")))
    algbw, busbw = _json_number(obj.get("alg_bw")), _json_number(obj.get("bus_bw"))
    if time is None or algbw is None or busbw is None:
        raise ParseError(f"{_TOOL} json: placement result missing time/alg_bw/bus_bw: {json.dumps(obj)[:160]}")
    iters = (
        {k: float(v) for k, v in per_iter.items() if isinstance(v, int | float)} if isinstance(per_iter, dict) else {}
    )
    return PlacementResult(
        time_us=time, algbw_gbps=algbw, busbw_gbps=busbw, wrong=_json_number(obj.get("nwrong")), per_iter_us=iters
    )


def parse_nccl_tests_json(text: str) -> NcclResult:
    """The ``-J``/``--output_file`` JSON document of recent nccl-tests (format read from ``src/util.cu``, version 2:
    ``config.devices``, ``results[]`` with ``out_of_place``/``in_place`` ``{time, alg_bw, bus_bw, nwrong}``,
    ``out_of_bounds``, ``average_bus_bandwidth``; booleans are written as the strings "true"/"false")."""
    data = json_document(text, f"{_TOOL} json")
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise parse_error(f"{_TOOL} json", "no 'results' list", 1, text.splitlines()[0] if text else "")
    config = data.get("config") or {}
    ranks = tuple(
        RankDevice(
            rank=int(d.get("rank", 0)),
            group=d.get("group"),
            pid=int(d.get("pid", 0)),
            host=str(d.get("hostname", "")),
            device=int(d.get("device", 0)),
            busid=str(d.get("device_hex", "")),
            name=str(d.get("device_info", "")),
        )
        for d in config.get("devices") or []
        if isinstance(d, dict)
    )
    rows: list[NcclRow] = []
    for i, r in enumerate(data["results"]):
        if not isinstance(r, dict) or "size" not in r:
            raise ParseError(f"{_TOOL} json: results[{i}] has no size: {json.dumps(r)[:160]}")
        root = str(r.get("root", "")).strip()
        rows.append(
            NcclRow(
                size=int(r["size"]),
                count=int(r.get("count", 0)),
                dtype=str(r.get("type", "")),
                redop=r.get("redop"),
                root=int(root) if re.fullmatch(r"-?\d+", root) else None,
                out_of_place=_json_placement(r.get("out_of_place"), r.get("out_of_place_per_iter")),
                in_place=_json_placement(r.get("in_place"), r.get("in_place_per_iter")),
                line_no=i + 1,
            )
        )
    if not rows:
        raise ParseError(f"{_TOOL} json: 'results' is empty")
    args = data.get("args") or []
    oob, avg = data.get("out_of_bounds") or {}, data.get("average_bus_bandwidth") or {}
    okay = avg.get("okay")
    params = {k: str(v) for k, v in config.items() if k != "devices"}
    return NcclResult(
        program=str(args[0]).rsplit("/", 1)[-1] if args else None,
        version=str(data["nccl_version"]) if "nccl_version" in data else None,
        params=params,
        ranks=ranks,
        rows=tuple(rows),
        wrong_column="#wrong",
        avg_busbw_gbps=_json_number(avg.get("bandwidth")),
        oob_count=int(oob["count"]) if isinstance(oob.get("count"), int) else None,
        oob_ok=str(oob.get("okay")).lower() == "true" if "okay" in oob else None,
        avg_bw_check=None if okay in (None, "unchecked") else ("OK" if str(okay).lower() == "true" else "FAILED"),
    )


# --- transports from NCCL_DEBUG=INFO ----------------------------------------------------------------------------


class Transport(StrEnum):
    """The data paths NCCL reports in its ``NCCL_DEBUG=INFO`` connection lines."""

    NVLS = "NVLS"  # NVLink SHARP (NVSwitch multicast); only when channels are actually built
    P2P_IPC = "P2P/IPC"  # NVLink or PCIe peer-to-peer through CUDA IPC handles
    P2P_CUMEM = "P2P/CUMEM"  # peer-to-peer through cuMem handles (NCCL >= 2.19)
    P2P_DIRECT = "P2P/direct"  # same-process peers (one process driving several GPUs)
    SHM = "SHM"  # through host shared memory (no P2P between the GPUs)
    NET_IB = "NET/IB"  # InfiniBand / RoCE verbs (internal or IBext plugin)
    NET_IB_GDRDMA = "NET/IB/GDRDMA"  # ... with GPUDirect RDMA (NIC reads/writes GPU memory directly)
    NET_SOCKET = "NET/Socket"  # TCP sockets
    NET_LIBFABRIC = "NET/AWS Libfabric"  # AWS EFA through the aws-ofi-nccl plugin (RDMA over SRD)
    NET_LIBFABRIC_GDRDMA = "NET/AWS Libfabric/GDRDMA"
    COLLNET = "CollNet"  # in-network reduction (SHARP): a "via COLLNET/..." connection line


_NVLS_CHANNELS = re.compile(r"\b(\d+) nvls channels\b")
# "NCCL INFO Using network IB" / "Socket" / "AWS Libfabric" / "IBext_v8": the network plugin NCCL selected for
# traffic between nodes (printed once per rank at init, also when NCCL prints no per-channel "via" lines).
_USING_NETWORK = re.compile(r"NCCL INFO Using network (.+?)\s*$")
# "NET/IB : Using [0]mlx5_0:1/RoCE [1]mlx5_1:1/IB ; OOB eth0:...": the verbs devices the IB transport opened.
_NET_IB_USING = re.compile(r"NCCL INFO NET/IB\s*: Using (\[\d+\]\S+)")
_NVLS_CONNECTED = re.compile(r"\bConnected NVLS\b|\bNVLS comm 0x")


def _classify(via: str) -> set[str]:
    parts = via.split("/")
    kind = parts[0].upper()
    if kind == "P2P" and len(parts) > 1:
        sub = parts[1].split()[0].upper()
        known: dict[str, set[str]] = {
            "IPC": {Transport.P2P_IPC},
            "CUMEM": {Transport.P2P_CUMEM},
            "DIRECT": {Transport.P2P_DIRECT},
        }
        return known.get(sub, {f"P2P/{parts[1].split()[0]}"})
    if kind == "SHM":
        return {Transport.SHM}
    if kind == "NVLS":
        return {Transport.NVLS}
    if kind == "COLLNET":
        return {Transport.COLLNET}
    if kind == "NET" and len(parts) > 1:
        name = parts[1]
        gdr = "GDRDMA" in parts[2:]
        if name.upper().startswith("IB"):  # IB, IBext, IBext_v8 (the HPC-X / SHARP plugin's verbs transport)
            return {Transport.NET_IB, Transport.NET_IB_GDRDMA} if gdr else {Transport.NET_IB}
        if name.lower() == "socket":
            return {Transport.NET_SOCKET}
        if name == "AWS Libfabric":
            return {Transport.NET_LIBFABRIC, Transport.NET_LIBFABRIC_GDRDMA} if gdr else {Transport.NET_LIBFABRIC}
        return {f"NET/{name}", f"NET/{name}/GDRDMA"} if gdr else {f"NET/{name}"}
    return {via}


def transports(text: str | Iterable[str]) -> set[str]:
    """The transports NCCL used, from ``NCCL_DEBUG=INFO`` lines (``Channel 00/0 : 0[0] -> 1[1] via P2P/IPC/read``,
    ``... [send] via NET/IB/0/GDRDMA``, ``via SHM/direct/direct``, ``via NET/Socket/3``, ``N nvls channels``).

    Values are :class:`Transport` members (``StrEnum``, so plain strings) or, for network plugins we do not name,
    ``NET/<plugin name>`` (plus ``NET/<name>/GDRDMA``). ``NET/IB/GDRDMA`` comes with ``NET/IB``. "NVLS multicast
    support is available" does not count: NVLS is reported only when NVLS channels or connections are built.

    When the log has no connection line at all (NCCL prints them only at some debug levels and versions, and
    excerpts drop them), the network NCCL selected counts instead: ``Using network IB|IBext_v8|Socket|AWS
    Libfabric`` and ``NET/IB : Using [0]mlx5_0:1/RoCE`` (IB verbs over RoCE) give the values of the matching
    ``via`` lines. With connection lines present they alone count: a one-node run also loads the IB network.
    """
    lines = text.splitlines() if isinstance(text, str) else text
    found: set[str] = set()
    selected: set[str] = set()  # the network NCCL loaded: what it would use between nodes, not a connection
    for line in lines:
        if "NCCL INFO" not in line:
            continue
        if " via " in line:
            found |= _classify(line.split(" via ", 1)[1].strip())
        elif "Using network" in line and (m := _USING_NETWORK.search(line)):
            selected |= _classify(f"NET/{m.group(1)}")
        elif "NET/IB" in line and _NET_IB_USING.search(line):
            selected.add(Transport.NET_IB)
        elif ((m := _NVLS_CHANNELS.search(line)) and int(m.group(1)) > 0) or _NVLS_CONNECTED.search(line):
            found.add(Transport.NVLS)
    if not found:  # no connection line at all: the selected network is the best evidence there is
        found = selected
    return {str(t) for t in found}
