"""``nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]`` and ``nvidia-smi -L``.

Why: node inventory and power/temperature traces come from nvidia-smi on hosts without NVML bindings, and its CSV
is irregular: the separator is comma+space, units sit in the header (``power.draw [W]``) **and** on each value
(``16.48 W``) unless ``nounits``, unsupported fields read ``[Not Supported]`` / ``[N/A]`` / ``N/A``.
Values become floats where numeric (unit suffix removed), ``None`` where not available, strings otherwise.

Metric scheme for :func:`query_measurements` (label ``gpu`` = index, ``uuid`` when queried): ``power`` (W),
``temperature`` (C), ``gpu_util`` / ``memory_util`` (%), ``memory_used`` / ``memory_total`` / ``memory_free``
(MiB). Other fields stay in the typed rows only.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from harness.measurement import Measurement
from harness.parsers._lines import parse_error

__all__ = ["GpuListEntry", "GpuQueryRow", "MigDevice", "parse_gpu_list", "parse_query_csv", "query_measurements"]

_TOOL = "nvidia-smi"
_NOT_AVAILABLE = frozenset(
    {
        "[not supported]",
        "[n/a]",
        "n/a",
        "[unknown error]",
        "[insufficient permissions]",
        "[gpu is lost]",
        "[requires pro license]",
        "",
    }
)
_HEADER_UNIT = re.compile(r"^(?P<field>[^\[]+?)\s*\[(?P<unit>[^\]]+)\]$")
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_.]*(?: \[[^\]]+\])?$")
_NUMBER = re.compile(r"^[-+]?\d+(?:\.\d+)?$")

Value = float | str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuQueryRow:
    """One CSV row: field name (as queried, e.g. ``power.draw``) -> value; ``units`` from the header."""

    values: Mapping[str, Value]
    units: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Value:
        return self.values.get(name)


def _value(token: str, unit: str | None) -> Value:
    token = token.strip()
    if token.lower() in _NOT_AVAILABLE:
        return None
    if unit and token.endswith(" " + unit):
        token = token[: -len(unit) - 1].strip()
    elif " " in token and _NUMBER.match(token.split(" ", 1)[0]) and len(token.split()) == 2:
        token = token.split(" ", 1)[0]  # a value carrying a unit the header did not state (noheader output)
    if _NUMBER.match(token):
        return float(token)
    return token


def parse_query_csv(text: str, *, fields: Sequence[str] | None = None) -> tuple[GpuQueryRow, ...]:
    """Rows of ``--query-gpu`` CSV. With ``noheader`` output pass ``fields`` (the ``--query-gpu`` list, in order);
    with a header, ``fields`` (if given) must match it."""
    lines = [(no, line) for no, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise parse_error(_TOOL, "empty --query-gpu output", 1, "")
    first_no, first = lines[0]
    cells = [c.strip() for c in next(csv.reader([first], skipinitialspace=True))]
    # a header cell is a lowercase field name (``power.draw``, ``power.draw [W]``); data cells are values
    # (``Tesla K80``, ``GPU-...``, ``16.48 W``), so ``name,uuid`` noheader rows are not mistaken for a header
    looks_like_header = all(_FIELD_NAME.match(c) for c in cells)
    names: list[str]
    units: dict[str, str] = {}
    if looks_like_header:
        names = []
        for c in cells:
            m = _HEADER_UNIT.match(c)
            names.append(m["field"] if m else c)
            if m:
                units[m["field"]] = m["unit"]
        if fields is not None and names != list(fields):
            raise parse_error(_TOOL, f"header fields {names} differ from the queried {list(fields)}", first_no, first)
        data = lines[1:]
    elif fields is not None:
        names, data = list(fields), lines
    else:
        raise parse_error(_TOOL, "no header line (noheader output needs fields=...)", first_no, first)
    rows: list[GpuQueryRow] = []
    for no, line in data:
        values = [c for c in next(csv.reader([line], skipinitialspace=True))]
        if len(values) != len(names):
            raise parse_error(_TOOL, f"row has {len(values)} values, expected {len(names)}", no, line)
        rows.append(
            GpuQueryRow(values={n: _value(v, units.get(n)) for n, v in zip(names, values, strict=True)}, units=units)
        )
    return tuple(rows)


_METRICS: dict[str, tuple[str, str]] = {
    "power.draw": ("power", "W"),
    "temperature.gpu": ("temperature", "C"),
    "utilization.gpu": ("gpu_util", "%"),
    "utilization.memory": ("memory_util", "%"),
    "memory.used": ("memory_used", "MiB"),
    "memory.total": ("memory_total", "MiB"),
    "memory.free": ("memory_free", "MiB"),
}


def query_measurements(
    rows: Iterable[GpuQueryRow], *, extra_labels: Mapping[str, str] | None = None
) -> list[Measurement]:
    """Measurements for the fields in the module docstring; unavailable values are skipped, not zero."""
    out: list[Measurement] = []
    for row in rows:
        labels = dict(extra_labels or {})
        index = row.get("index")
        if isinstance(index, float):
            labels["gpu"] = str(int(index))
        if isinstance(row.get("uuid"), str):
            labels["uuid"] = str(row.get("uuid"))
        for name, (metric, unit) in _METRICS.items():
            value = row.get(name)
            if isinstance(value, float):
                out.append(Measurement(metric=metric, value=value, unit=unit, labels=labels))
    return out


# --- nvidia-smi -L ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MigDevice:
    """A MIG instance line under its GPU: ``MIG 1g.10gb     Device  0: (UUID: MIG-...)``."""

    profile: str
    device: int
    uuid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuListEntry:
    """``GPU 0: Tesla P100-PCIE-16GB (UUID: GPU-...)`` plus its MIG instances."""

    index: int
    name: str
    uuid: str
    mig_devices: tuple[MigDevice, ...] = ()


_GPU_LINE = re.compile(r"^GPU\s+(?P<index>\d+):\s+(?P<name>.+?)\s+\(UUID:\s*(?P<uuid>[^)\s]+)\)\s*$")
_MIG_LINE = re.compile(r"^\s+MIG\s+(?P<profile>\S+)\s+Device\s+(?P<device>\d+):\s+\(UUID:\s*(?P<uuid>[^)\s]+)\)\s*$")


def parse_gpu_list(text: str) -> tuple[GpuListEntry, ...]:
    """GPUs (and MIG instances) listed by ``nvidia-smi -L``; any other non-empty line is a ParseError."""
    gpus: list[GpuListEntry] = []
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if m := _GPU_LINE.match(line):
            gpus.append(GpuListEntry(index=int(m["index"]), name=m["name"], uuid=m["uuid"]))
        elif (m := _MIG_LINE.match(line)) and gpus:
            last = gpus[-1]
            mig = MigDevice(profile=m["profile"], device=int(m["device"]), uuid=m["uuid"])
            gpus[-1] = GpuListEntry(
                index=last.index, name=last.name, uuid=last.uuid, mig_devices=(*last.mig_devices, mig)
            )
        else:
            raise parse_error(_TOOL, "not a 'GPU N: NAME (UUID: ...)' or MIG line", no, line)
    if not gpus:
        raise parse_error(_TOOL, "no GPU lines in 'nvidia-smi -L' output", 1, text[:80] or "<empty>")
    return tuple(gpus)
