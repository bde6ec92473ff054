"""Which backend answered: a weighted traffic split observed in load samples, judged with binomial statistics.

Why statistics and not a fixed tolerance: with a configured 80/20 split each request independently lands on v2
with probability 0.2, so over N requests the v2 count is Binomial(N, 0.2). A fixed "+-5 %" is too strict at
N = 100 (it fails a correct router about 1 time in 5) and too lax at N = 10,000. The check here accepts the
central interval holding at least 1 - alpha of that distribution (exact, from the binomial pmf), so a correct
router fails it with probability <= alpha, whatever N, and a router that ignores the weights fails it
with overwhelming probability once N is a few hundred.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SplitCheck", "binomial_interval", "check_split", "requests_for"]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitCheck:
    """One subset of a weighted split: observed count against the binomial acceptance interval."""

    subset: str
    weight: float  # configured share, 0..1
    observed: int
    total: int
    low: int
    high: int

    @property
    def share(self) -> float:
        return self.observed / self.total if self.total else 0.0

    @property
    def ok(self) -> bool:
        return self.low <= self.observed <= self.high

    def __str__(self) -> str:
        verdict = "within" if self.ok else "OUTSIDE"
        return (
            f"{self.subset}: {self.observed}/{self.total} = {100 * self.share:.1f} % (configured "
            f"{100 * self.weight:g} %), {verdict} the binomial acceptance interval [{self.low}, {self.high}]"
        )


def check_split(
    counts: Mapping[str, int], weights: Mapping[str, float], *, alpha: float = DEFAULT_ALPHA
) -> list[SplitCheck]:
    """Each configured subset's count against Binomial(total, weight / sum of weights); answers from a subset
    that has no weight are reported as a subset of weight 0 (only 0 of them is accepted)."""
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"check_split: weights must be non-negative with a positive sum (got {dict(weights)})")
    total = sum(counts.values())
    if total <= 0:
        raise ValueError("check_split: no answered request to judge the split by")
    scale = sum(weights.values())
    names = list(weights) + sorted(set(counts) - set(weights))
    out = []
    for name in names:
        p = weights.get(name, 0.0) / scale
        low, high = binomial_interval(total, p, alpha)
        out.append(SplitCheck(subset=name, weight=p, observed=counts.get(name, 0), total=total, low=low, high=high))
    return out
