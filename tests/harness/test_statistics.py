"""Percentiles by both documented methods (harness.statistics), and the measurements that carry them."""

from __future__ import annotations

import pytest

from harness.statistics import Method, percentile_measurements, percentiles

LINEAR, NEAREST = Method.LINEAR, Method.NEAREST_RANK


def test_linear_interpolation_matches_numpy_default() -> None:
    """numpy.percentile([15, 20, 35, 40, 50], [0, 25, 40, 50, 100]) = [15, 20, 29, 35, 50] (method 'linear')."""
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentiles(values, [0, 25, 40, 50, 100], method=LINEAR) == {
        0: 15.0,
        25: 20.0,
        40: 29.0,
        50: 35.0,
        100: 50.0,
    }
    assert percentiles([7.0], [99.9], method=LINEAR) == {99.9: 7.0}
    assert percentiles(list(range(1, 101)), [99], method=LINEAR)[99] == pytest.approx(99.01)


def test_nearest_rank_is_the_kubernetes_e2e_method() -> None:
    """latencies[ceil(n*q/100)-1] as the e2e framework's ExtractLatencyMetrics: always a sample, never between."""
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentiles(values, [0, 25, 40, 50, 100], method=NEAREST) == {
        0: 15.0,
        25: 20.0,
        40: 20.0,
        50: 35.0,
        100: 50.0,
    }
    hundred = [float(v) for v in range(1, 101)]
    assert percentiles(hundred, [50, 90, 99], method=NEAREST) == {50: 50.0, 90: 90.0, 99: 99.0}
    # p99 of 20 samples is the slowest one (interpolation would shave it towards the 19th)
    twenty = [float(v) for v in range(1, 21)]
    assert percentiles(twenty, [99], method=NEAREST)[99] == 20.0
    assert percentiles(twenty, [99], method=LINEAR)[99] == pytest.approx(19.81)
    # float noise (0.07 * 100 = 7.000000000000001) does not move a rank up
    assert percentiles(hundred, [7], method=NEAREST)[7] == 7.0


@pytest.mark.parametrize("method", list(Method))
def test_no_values_or_a_bad_quantile_is_an_error(method: Method) -> None:
    with pytest.raises(ValueError, match="empty"):
        percentiles([], [50], method=method)
    with pytest.raises(ValueError, match="outside"):
        percentiles([1.0], [101], method=method)


def test_percentile_measurements_label_the_stat_and_keep_samples_on_request() -> None:
    out = percentile_measurements("api_latency", "ms", [3.0, 1.0, 2.0], [50, 99.9], method=NEAREST,
                                  labels={"verb": "get"}, samples=True)  # fmt: skip
    percentile = [(m.labels["percentile"], m.value) for m in out if m.labels["stat"] == "percentile"]
    assert percentile == [("50", 2.0), ("99.9", 3.0)]
    assert sorted(m.value for m in out if m.labels["stat"] == "sample") == [1.0, 2.0, 3.0]
    assert all(m.labels["verb"] == "get" and m.unit == "ms" and m.metric == "api_latency" for m in out)
    assert len(percentile_measurements("x", "s", [1.0], [50], method=LINEAR)) == 1
