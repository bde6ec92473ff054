"""The weighted-split verdict: the exact binomial acceptance interval (harness.statistics), and what the
``split-within-binomial`` rule accepts and rejects."""

from __future__ import annotations

import math
import random

import pytest

from harness.statistics import binomial_interval, requests_for, split_measurements
from harness.thresholds.model import Check, RuleKind, Status
from harness.thresholds.verdicts import judge


def _cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def split(counts: dict[str, int], weights: dict[str, float]) -> dict[str, Check]:
    """The rule's checks by subset, on the evidence the routing suite records (the same builder)."""
    checks = judge(None, "inference-route-istio", RuleKind.WEIGHTED_SPLIT, split_measurements(counts, weights))
    return {c.labels.get("subset", "-"): c for c in checks}


def ok(check: Check) -> bool:
    return check.status is Status.PASSED


@pytest.mark.parametrize(("n", "p", "alpha"), [(100, 0.2, 1e-3), (1000, 0.8, 1e-3), (50, 0.5, 0.05), (400, 0.1, 0.01)])
def test_interval_is_the_exact_central_interval(n: int, p: float, alpha: float) -> None:
    lo, hi = binomial_interval(n, p, alpha)
    # each tail outside is at most alpha/2, and widening by one would no longer hold
    assert _cdf(lo - 1, n, p) <= alpha / 2 < _cdf(lo, n, p)
    assert 1 - _cdf(hi, n, p) <= alpha / 2 < 1 - _cdf(hi - 1, n, p)
    assert lo <= n * p <= hi


def test_edge_weights() -> None:
    assert binomial_interval(100, 0.0) == (0, 0)
    assert binomial_interval(100, 1.0) == (100, 100)
    with pytest.raises(ValueError):
        binomial_interval(10, 1.5)


def test_correct_router_passes_and_ignoring_weights_fails() -> None:
    weights = {"v1": 80.0, "v2": 20.0}
    rng = random.Random(1)
    failures = 0
    for _ in range(200):  # a correct 80/20 router over 500 requests: fails at most ~alpha of the time
        v2 = sum(rng.random() < 0.2 for _ in range(500))
        failures += not all(ok(c) for c in split({"v1": 500 - v2, "v2": v2}, weights).values())
    assert failures <= 2
    even = split({"v1": 250, "v2": 250}, weights)  # a 50/50 router (weights ignored)
    assert not any(ok(c) for c in even.values())
    assert "OUTSIDE" in even["v2"].detail and "configured 20 %" in even["v2"].detail
    assert even["v2"].message.startswith("inference-route-istio-split: v2: 250/500 = 50.0 %")


def test_unconfigured_subset_answering_is_a_failure() -> None:
    extra = split({"v1": 90, "v2": 10, "v3": 1}, {"v1": 90.0, "v2": 10.0})["v3"]
    assert extra.bar == 0 and not ok(extra)


def test_header_routing_all_to_one_subset() -> None:
    checks = split({"v2": 300}, {"v1": 0.0, "v2": 100.0})
    assert ok(checks["v1"]) and ok(checks["v2"]) and checks["v2"].observed == 300
    assert not ok(split({"v1": 1, "v2": 299}, {"v1": 0.0, "v2": 100.0})["v1"])  # one misrouted request


def test_requests_for_sizing() -> None:
    assert requests_for(0.2, 0.05) == 693  # z(0.9995) = 3.2905: ceil(3.2905^2 * 0.16 / 0.0025)
    with pytest.raises(ValueError):
        requests_for(0.0, 0.05)


def test_nothing_to_judge_is_no_data() -> None:
    (none,) = split({}, {"v1": 1.0}).values()
    assert none.status is Status.NO_DATA and "no answered request" in none.detail
    (zero,) = split({"v1": 1}, {"v1": 0.0}).values()
    assert zero.status is Status.NO_DATA and "no subset has a positive configured weight" in zero.detail
