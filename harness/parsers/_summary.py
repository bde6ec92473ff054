"""Summary statistics written by other load generators, as Measurements with our ``stat``/``percentile`` labels.

Why one place: inference-perf, GuideLLM and vLLM all publish a latency as a small summary (mean, median, min,
max, a few percentiles) under their own key spellings (``median``, ``p90``, ``p999``, ``p99.9``); mapping every
spelling to ``stat=percentile, percentile=99.9`` here keeps the readers consistent with our own serving metrics
(docs/serving-metrics.md), so one profile bar judges a number whichever tool measured it. The same holds for their
request totals (succeeded, failed), which become our ``requests``/``failures``/``error_rate``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.measurement import Measurement
from harness.parsers._numbers import finite
from harness.statistics import percentile_text

__all__ = ["distribution_measurements", "percentile_label", "request_counts"]

_PCT_KEY = re.compile(r"^p(\d+(?:\.\d+)?)$")


def percentile_label(key: str) -> str | None:
    """``"99"`` for ``p99``, ``"99.9"`` for ``p999`` or ``p99.9``, ``"0.1"`` for ``p001``, ``"1"`` for ``p01``,
    ``"50"`` for ``median``; None for keys that are not percentiles. GuideLLM writes p001/p01/p05/p999: three
    digits put the decimal point before the last one, two digits are a whole percentile."""
    if key == "median":
        return "50"
    m = _PCT_KEY.match(key)
    if m is None or m.group(1) == "100":
        return None
    digits = m.group(1)
    value = float(f"{digits[:-1]}.{digits[-1]}") if "." not in digits and len(digits) == 3 else float(digits)
    return percentile_text(value) if 0 < value < 100 else None


def distribution_measurements(
    metric: str,
    summary: Mapping[str, Any],
    *,
    unit: str,
    scale: float = 1.0,
    labels: Mapping[str, str] | None = None,
) -> list[Measurement]:
    """``mean``/``min``/``max`` as ``stat=<name>``; ``median`` and ``pNN`` keys (also inside a nested
    ``percentiles`` object) as ``stat=percentile``. Values are multiplied by ``scale`` (s -> ms: 1000)."""
    base = dict(labels or {})
    out: list[Measurement] = []
    seen: set[str] = set()
    items = list(summary.items())
    nested = summary.get("percentiles")
    if isinstance(nested, Mapping):
        items += list(nested.items())
    for key, raw in items:
        value = finite(raw)
        if value is None:
            continue
        if key in ("mean", "min", "max"):
            out.append(Measurement(metric=metric, value=value * scale, unit=unit, labels={**base, "stat": key}))
        elif (q := percentile_label(key)) is not None and q not in seen:
            seen.add(q)
            out.append(
                Measurement(
                    metric=metric,
                    value=value * scale,
                    unit=unit,
                    labels={**base, "stat": "percentile", "percentile": q},
                )
            )
    return out


def request_counts(succeeded: float, failed: float, labels: Mapping[str, str]) -> list[Measurement]:
    """``requests`` (all sent) and ``failures`` as counts, and ``error_rate`` (% of all; omitted when none was
    sent: a rate of nothing is missing data, not 0 %)."""
    out = [
        Measurement(metric="requests", value=succeeded + failed, unit="count", labels=labels),
        Measurement(metric="failures", value=failed, unit="count", labels=labels),
    ]
    if succeeded + failed:
        out.append(
            Measurement(metric="error_rate", value=100.0 * failed / (succeeded + failed), unit="%", labels=labels)
        )
    return out
