"""Prometheus text exposition format (version 0.0.4) -> :class:`~harness.series.Series`.

Why our own reader: the checks read an exporter directly (dcgm-exporter through the API server's service proxy)
when a cluster has no Prometheus, and the tests feed real exporter output in; the format is small and stable, and
pulling in prometheus_client for one function is not worth a dependency. Handles ``# HELP``/``# TYPE`` lines,
escaped label values (``\\\\``, ``\\"``, ``\\n``), ``NaN``/``+Inf``/``-Inf``, optional timestamps, and blank lines.
"""

from __future__ import annotations

import math
import re

from harness.errors import ParseError
from harness.series import Series

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
_SPECIAL = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf}


def _unescape(text: str) -> str:
    return re.sub(r"\\[\\\"n]", lambda m: _ESCAPES[m.group(0)], text)


def _value(text: str, line_no: int) -> float:
    if text in _SPECIAL:
        return _SPECIAL[text]
    try:
        return float(text)
    except ValueError:
        raise ParseError(f"exposition line {line_no}: {text!r} is not a sample value") from None


def parse_exposition(text: str) -> list[Series]:
    """Every sample line as a Series whose labels include ``__name__``."""
    samples: list[Series] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name_match = _NAME.match(line)
        if not name_match:
            raise ParseError(f"exposition line {line_no}: no metric name in {raw[:80]!r}")
        labels = {"__name__": name_match.group(0)}
        pos = name_match.end()
        if pos < len(line) and line[pos] == "{":
            pos += 1
            if line[pos:].lstrip().startswith("}"):
                pos = line.index("}", pos) + 1
            else:
                while True:
                    label = _LABEL.match(line, pos)
                    if not label:
                        raise ParseError(f"exposition line {line_no}: malformed labels in {raw[:120]!r}")
                    labels[label.group(1)] = _unescape(label.group(2))
                    pos = label.end()
                    if label.group(3) == "}":
                        break
        fields = line[pos:].split()
        if not fields or len(fields) > 2:
            raise ParseError(f"exposition line {line_no}: expected 'value [timestamp]' in {raw[:120]!r}")
        samples.append(Series(labels=labels, value=_value(fields[0], line_no)))
    return samples


__all__ = ["parse_exposition"]
