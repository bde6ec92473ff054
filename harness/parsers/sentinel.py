"""The result block our own workload scripts print (DESIGN.md section 5).

A workload script may print anything (progress, warnings, tool logs), but its result is exactly one block::

    ===AIBENCH-RESULT-BEGIN===
    {"measurements": [{"metric": "ttft", "value": 41.2, "unit": "ms", "labels": {"percentile": "99"}}],
     "info": {"model": "..."}}
    ===AIBENCH-RESULT-END===

Why a sentinel block: container logs interleave stdout and stderr of several processes; markers on their own lines
survive that, and "exactly one block" catches a script that ran twice or died mid-print (a truncated block is a parse
failure, never a silently partial result).

A marker line may carry a constant prefix added by the log path (``[1,0]<stdout>:`` from ``mpirun --tag-output``,
``[pod/x/c] `` from ``kubectl logs --prefix``): whatever precedes the BEGIN marker is stripped from the block's lines
when they start with it. Validation is strict: unknown keys, non-numeric values, unknown units are errors, because a
typo in a script must fail loudly rather than produce a measurement no threshold selects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.measurement import Measurement
from harness.parsers._lines import excerpt, parse_error
from harness.parsers._numbers import is_finite
from harness.units import UnitMismatch, unit

__all__ = ["BEGIN", "END", "SentinelResult", "parse_sentinel"]

BEGIN = "===AIBENCH-RESULT-BEGIN==="
END = "===AIBENCH-RESULT-END==="

_TOOL = "result block"
_MEASUREMENT_KEYS = frozenset({"metric", "value", "unit", "labels", "emulated"})
_TOP_KEYS = frozenset({"measurements", "info"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SentinelResult:
    """The parsed block: its measurements in order, the free-form ``info`` object, and where the block was."""

    measurements: tuple[Measurement, ...]
    info: Mapping[str, Any] = field(default_factory=dict)
    begin_line: int = 0
    end_line: int = 0


def _find_block(text: str) -> tuple[int, int, list[str]]:
    """(begin line no, end line no, content lines) of the single block; errors for none, two, or unterminated."""
    begin: int | None = None
    prefix = ""
    content: list[str] = []
    found: tuple[int, int, list[str]] | None = None
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if line.endswith(BEGIN):
            if begin is not None:
                raise parse_error(_TOOL, f"block begun at line {begin} is not terminated before another BEGIN", no, raw)
            if found is not None:
                raise parse_error(_TOOL, f"more than one result block (the first at line {found[0]})", no, raw)
            begin, prefix, content = no, line[: -len(BEGIN)], []
        elif line.endswith(END):
            if begin is None:
                raise parse_error(_TOOL, "END marker without a BEGIN marker", no, raw)
            found = (begin, no, content)
            begin = None
        elif begin is not None:
            content.append(raw[len(prefix) :] if prefix and raw.startswith(prefix) else raw)
    if begin is not None:
        last = text.splitlines()[-1] if text.splitlines() else ""
        raise parse_error(_TOOL, f"block begun at line {begin} is not terminated (no {END})", begin, last)
    if found is None:
        raise parse_error(_TOOL, f"no result block ({BEGIN} ... {END}) in the output", None, _tail(text))
    return found


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "<empty output>"


def _measurement(item: Any, index: int, line_no: int) -> Measurement:
    where = f"measurements[{index}]"

    def bad(message: str) -> Exception:
        return parse_error(_TOOL, f"{where}: {message}", line_no, excerpt(json.dumps(item)))

    if not isinstance(item, dict):
        raise bad("must be an object")
    unknown = set(item) - _MEASUREMENT_KEYS
    if unknown:
        raise bad(f"unknown keys {sorted(unknown)} (allowed: {sorted(_MEASUREMENT_KEYS)})")
    metric, value, symbol = item.get("metric"), item.get("value"), item.get("unit")
    labels = item.get("labels") or {}
    if not isinstance(metric, str) or not metric:
        raise bad("'metric' must be a non-empty string")
    if not is_finite(value):
        raise bad(f"'value' must be a finite number, got {value!r}")
    if not isinstance(symbol, str):
        raise bad(f"'unit' must be a string, got {symbol!r}")
    try:
        unit(symbol)
    except UnitMismatch as exc:
        raise bad(str(exc)) from None
    if not isinstance(labels, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in labels.values()
    ):
        raise bad("'labels' must be an object of string or number values")
    emulated = item.get("emulated", False)
    if not isinstance(emulated, bool):
        raise bad("'emulated' must be true or false")
    return Measurement(metric=metric, value=float(value), unit=symbol, labels=labels, emulated=emulated)


def parse_sentinel(text: str) -> SentinelResult:
    """Parse the one result block in ``text`` (a whole pod log); raises ParseError naming the line at fault."""
    begin, end, content = _find_block(text)
    body = "\n".join(content)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        bad_line = content[exc.lineno - 1] if 0 < exc.lineno <= len(content) else body
        raise parse_error(_TOOL, f"invalid JSON ({exc.msg})", begin + exc.lineno, bad_line) from None
    if not isinstance(data, dict):
        raise parse_error(_TOOL, "the block must hold a JSON object", begin + 1, content[0] if content else "")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise parse_error(
            _TOOL,
            f"unknown top-level keys {sorted(unknown)} (allowed: {sorted(_TOP_KEYS)})",
            begin + 1,
            content[0] if content else "",
        )
    items = data.get("measurements")
    if not isinstance(items, list):
        raise parse_error(_TOOL, "'measurements' must be a list", begin + 1, content[0] if content else "")
    info = data.get("info", {})
    if not isinstance(info, dict):
        raise parse_error(_TOOL, "'info' must be an object", begin + 1, content[0] if content else "")
    measurements = tuple(_measurement(item, i, begin + 1) for i, item in enumerate(items))
    return SentinelResult(measurements=measurements, info=info, begin_line=begin, end_line=end)
