"""Routing-split statistics: the exact binomial acceptance interval, and what it accepts and rejects."""

from __future__ import annotations

import math
import random

import pytest

from harness.parsers.routing_split import binomial_interval, check_split, requests_for


def _cdf(k, n, p):
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize(("n", "p", "alpha"), [(100, 0.2, 1e-3), (1000, 0.8, 1e-3), (50, 0.5, 0.05), (400, 0.1, 0.01)])
def test_interval_is_the_exact_central_interval(n, p, alpha):
    lo, hi = binomial_interval(n, p, alpha)
    # each tail outside is at most alpha/2, and widening by one would no longer hold
    assert _cdf(lo - 1, n, p) <= alpha / 2 < _cdf(lo, n, p)
    assert 1 - _cdf(hi, n, p) <= alpha / 2 < 1 - _cdf(hi - 1, n, p)
    assert lo <= n * p <= hi


def test_edge_weights():
    assert binomial_interval(100, 0.0) == (0, 0)
    assert binomial_interval(100, 1.0) == (100, 100)
    with pytest.raises(ValueError):
        binomial_interval(10, 1.5)


def test_correct_router_passes_and_ignoring_weights_fails():
    weights = {"v1": 80, "v2": 20}
    rng = random.Random(1)
    failures = 0
    for _ in range(200):  # a correct 80/20 router over 500 requests: fails at most ~alpha of the time
        v2 = sum(rng.random() < 0.2 for _ in range(500))
        failures += not all(c.ok for c in check_split({"v1": 500 - v2, "v2": v2}, weights))
    assert failures <= 2
    even = check_split({"v1": 250, "v2": 250}, weights)  # a 50/50 router (weights ignored)
    assert not any(c.ok for c in even)
    assert "OUTSIDE" in str(even[1]) and "configured 20 %" in str(even[1])


def test_unconfigured_subset_answering_is_a_failure():
    checks = check_split({"v1": 90, "v2": 10, "v3": 1}, {"v1": 90, "v2": 10})
    extra = next(c for c in checks if c.subset == "v3")
    assert extra.weight == 0 and not extra.ok


def test_header_routing_all_to_one_subset():
    (v1, v2) = check_split({"v2": 300}, {"v1": 0, "v2": 100})
    assert v1.ok and v2.ok and v2.share == 1.0
    (v1, v2) = check_split({"v1": 1, "v2": 299}, {"v1": 0, "v2": 100})
    assert not v1.ok  # one misrouted request breaks 100 % correct header routing


def test_requests_for_sizing():
    assert requests_for(0.2, 0.05) == 693  # z(0.9995) = 3.2905: ceil(3.2905^2 * 0.16 / 0.0025)
    with pytest.raises(ValueError):
        requests_for(0.0, 0.05)


def test_bad_inputs():
    with pytest.raises(ValueError, match="positive sum"):
        check_split({"v1": 1}, {"v1": 0})
    with pytest.raises(ValueError, match="no answered request"):
        check_split({}, {"v1": 1})
