"""Statistics of raw samples, in one place: percentiles and the measurements that carry them.

Two methods, one implementation (:func:`percentiles`), and every caller names the one its bar's source uses, so a
p99 the harness computes is the p99 the bar was written for:

- :attr:`Method.NEAREST_RANK`: the q-th percentile of n sorted samples is the ``ceil(q/100 * n)``-th smallest
  (1-based; ``q = 0`` is the minimum). This is the method of the upstream Kubernetes SLO measurements behind the
  control-plane bars (pod startup p99 <= 5 s, API call p99 <= 1 s): the e2e framework's ``ExtractLatencyMetrics``
  and clusterloader2's ``NewLatencyMetric`` take ``latencies[ceil(n*q/100)-1]``. The value is a latency a request
  really had, and at small n it never understates a tail (p99 of 20 samples is the slowest one). Used for
  client-observed latencies judged against SLO-style bars (control plane, Prometheus queries).
- :attr:`Method.LINEAR`: linear interpolation between closest ranks, position ``q/100 * (n-1)`` (numpy's and
  pandas' default, Excel's PERCENTILE.INC). This is the method of the vLLM benchmark scripts and guidellm the
  inference bars come from (``np.percentile``), so serving latencies computed from our raw samples compare with
  their published numbers. Used by the load generator's and the streamed-inference samples' parsers.

Percentiles a tool computes itself (fio, locust's CSV, vLLM's bench JSON) are parsed as reported, never recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from harness.measurement import Measurement

__all__ = ["Method", "percentile_measurements", "percentiles"]


class Method(StrEnum):
    """How :func:`percentiles` picks a value (see the module docstring for which upstream uses which)."""

    NEAREST_RANK = "nearest-rank"
    LINEAR = "linear"


def percentiles(values: Iterable[float], qs: Sequence[float], *, method: Method) -> dict[float, float]:
    """The percentiles ``q`` in [0, 100] of ``values`` by ``method``, keyed by ``q``.

    Raises ValueError for no values or a ``q`` outside [0, 100]: a percentile of nothing is missing data, which a
    caller must report as such, never as 0.
    """
    data = sorted(values)
    if not data:
        raise ValueError("percentiles of an empty sequence")
    out: dict[float, float] = {}
    n = len(data)
    for q in qs:
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile {q} outside [0, 100]")
        if method is Method.NEAREST_RANK:
            # the epsilon keeps float noise (0.07 * 100 = 7.000000000000001) from moving up one rank
            out[q] = data[max(1, math.ceil(q / 100.0 * n - 1e-9)) - 1]
        else:
            position = q / 100.0 * (n - 1)
            low = math.floor(position)
            high = min(low + 1, n - 1)
            out[q] = data[low] + (data[high] - data[low]) * (position - low)
    return out


def percentile_measurements(
    metric: str,
    unit: str,
    values: Sequence[float],
    qs: Sequence[float],
    *,
    method: Method,
    labels: Mapping[str, str] | None = None,
    emulated: bool = False,
    samples: bool = False,
) -> list[Measurement]:
    """One ``<metric>{stat=percentile, percentile=<q>}`` measurement per ``q`` (the profiles' bars select these),
    and with ``samples`` every raw value as ``<metric>{stat=sample}`` (so a report can plot the distribution and a
    later run can re-judge another quantile). Raises ValueError for no values, as :func:`percentiles`."""
    base = dict(labels or {})
    at = percentiles(values, qs, method=method)
    out = [
        Measurement(
            metric=metric,
            value=at[q],
            unit=unit,
            labels={**base, "stat": "percentile", "percentile": f"{q:g}"},
            emulated=emulated,
        )
        for q in qs
    ]
    if samples:
        out += [
            Measurement(metric=metric, value=v, unit=unit, labels={**base, "stat": "sample"}, emulated=emulated)
            for v in values
        ]
    return out
