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

Percentiles a tool computes itself (fio, locust's CSV, vLLM's bench JSON) are parsed as reported, never recomputed;
:func:`stat_measurements` gives them, and ours, the one label spelling the profiles' bars select (``stat=mean``,
``stat=percentile, percentile=99.9``).

**Binomial acceptance** (:func:`binomial_interval`, :func:`requests_for`) for a weighted traffic split: with a
configured 80/20 split each request independently lands on the 20 % subset with probability 0.2, so over N requests
its count is Binomial(N, 0.2). A fixed "+-5 %" tolerance is too strict at N = 100 (it fails a correct router about
1 time in 5) and too lax at N = 10,000; the exact central interval holding at least 1 - alpha of the distribution
fails a correct router with probability <= alpha, whatever N, and a router that ignores the weights with
overwhelming probability once N is a few hundred. The verdict on it is the ``split-within-binomial`` rule of
:mod:`harness.thresholds.verdicts`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from harness.measurement import Measurement

__all__ = [
    "DEFAULT_ALPHA",
    "Method",
    "binomial_interval",
    "percentile_measurements",
    "percentile_text",
    "percentiles",
    "requests_for",
    "split_measurements",
    "stat_measurements",
]


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


def percentile_text(q: float | str) -> str:
    """A percentile as its ``percentile`` label spells it, however the tool wrote it: ``99.9`` for ``99.900000``
    (fio), ``99.90`` or ``99.9`` (locust, redis-benchmark), ``50`` for ``50.0``. A bar selects ``percentile: "99.9"``,
    so every producer must spell it this one way."""
    return f"{float(q):g}"


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
    at = percentiles(values, qs, method=method)
    ranked = [(percentile_text(q), at[q]) for q in qs]
    out = stat_measurements(metric, unit, percentiles=ranked, labels=labels, emulated=emulated)
    if samples:
        out += stat_measurements(metric, unit, stats=[("sample", v) for v in values], labels=labels, emulated=emulated)
    return out


def stat_measurements(
    metric: str,
    unit: str,
    *,
    stats: Iterable[tuple[str, float | None]] = (),
    percentiles: Iterable[tuple[str, float | None]] = (),
    labels: Mapping[str, str] | None = None,
    emulated: bool = False,
) -> list[Measurement]:
    """``<metric>{stat=<name>}`` for each named statistic (``mean``, ``median``, ``min``, ``max``), then
    ``<metric>{stat=percentile, percentile=<q>}`` for each percentile (``q`` as its text, ``"99.9"``); a None value
    (a tool's ``N/A``) is left out. Whether a tool computed the numbers or :func:`percentiles` did, a report and a bar
    see one spelling."""
    base = dict(labels or {})
    named = [(value, {**base, "stat": stat}) for stat, value in stats]
    ranked = [(value, {**base, "stat": "percentile", "percentile": q}) for q, value in percentiles]
    return [
        Measurement(metric=metric, value=value, unit=unit, labels=chosen, emulated=emulated)
        for value, chosen in (*named, *ranked)
        if value is not None
    ]


# --- binomial acceptance of a weighted split -------------------------------------------------------------------------

#: The probability a correct router fails the split check.
DEFAULT_ALPHA = 1e-3


def _log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_interval(n: int, p: float, alpha: float = DEFAULT_ALPHA) -> tuple[int, int]:
    """The smallest count interval [lo, hi] with P(X < lo) <= alpha/2 and P(X > hi) <= alpha/2, X ~ Bin(n, p)."""
    if n < 0 or not 0.0 <= p <= 1.0 or not 0.0 < alpha < 1.0:
        raise ValueError(f"binomial_interval: need n >= 0, 0 <= p <= 1, 0 < alpha < 1 (got {n}, {p}, {alpha})")
    pmf = [math.exp(_log_pmf(k, n, p)) for k in range(n + 1)]
    lo, tail = 0, 0.0
    while lo < n and tail + pmf[lo] <= alpha / 2:
        tail += pmf[lo]
        lo += 1
    hi, tail = n, 0.0
    while hi > 0 and tail + pmf[hi] <= alpha / 2:
        tail += pmf[hi]
        hi -= 1
    return lo, hi


def split_measurements(counts: Mapping[str, int], weights: Mapping[str, float], **labels: str) -> list[Measurement]:
    """``routed{subset, weight}`` per configured or answering subset, and its ``route_share`` in %: the evidence
    the ``split-within-binomial`` rule judges (a subset that answered without a weight has weight 0). One builder
    for the routing suite and the rule's own tests, so the tests judge exactly what the suite records."""
    total = sum(counts.values())
    out = []
    for subset in [*weights, *sorted(set(counts) - set(weights))]:
        tags = {"subset": subset, **labels}
        out.append(
            Measurement(
                metric="routed",
                value=counts.get(subset, 0),
                unit="count",
                labels={**tags, "weight": f"{weights.get(subset, 0.0):g}"},
            )
        )
        if total:
            out.append(
                Measurement(metric="route_share", value=100 * counts.get(subset, 0) / total, unit="%", labels=tags)
            )
    return out


def requests_for(p: float, margin: float, alpha: float = DEFAULT_ALPHA) -> int:
    """Requests needed so the accepted share lies within +-``margin`` of ``p`` (normal approximation), e.g. for
    sizing a routing test: p=0.2, margin=0.05, alpha=1e-3 -> 693."""
    if not 0.0 < p < 1.0 or not 0.0 < margin < 1.0:
        raise ValueError(f"requests_for: need 0 < p < 1 and 0 < margin < 1 (got {p}, {margin})")
    z = _z(1 - alpha / 2)
    return math.ceil(z * z * p * (1 - p) / (margin * margin))


def _z(q: float) -> float:
    """Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9)."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01)  # fmt: skip
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    if q < 0.02425:
        t = math.sqrt(-2 * math.log(q))
        return (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) / (
            (((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1
        )
    if q > 1 - 0.02425:
        return -_z(1 - q)
    r = q - 0.5
    s = r * r
    return (
        (((((a[0] * s + a[1]) * s + a[2]) * s + a[3]) * s + a[4]) * s + a[5])
        * r
        / (((((b[0] * s + b[1]) * s + b[2]) * s + b[3]) * s + b[4]) * s + 1)
    )
