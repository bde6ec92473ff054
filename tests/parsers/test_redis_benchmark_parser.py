"""redis-benchmark --csv: real Redis 7.0.15 output (both captured here), the pre-6.2 header-less format, and
malformed input that must fail with a quoted excerpt."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.parsers.redis_benchmark import parse_redis_benchmark, redis_benchmark_measurements

DATA = Path(__file__).resolve().parents[1] / "data"
SET_GET = DATA / "redis-benchmark-7.0.15_set-get_c50-n20000-d1024_csv.txt"
ALL_TESTS = DATA / "redis-benchmark-7.0.15_all-tests_c10-n2000_csv.txt"
REFUSED = DATA / "redis-benchmark-7.0.15_connection-refused_csv.txt"
OLD = DATA / "redis-benchmark_constructed_pre-6.2-format_no-header.txt"
HEADER = (
    '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"'
)


def _by_labels(measurements):
    return {(m.metric, tuple(sorted(m.labels.items()))): m for m in measurements}


def test_redis7_set_get_sample_gives_ops_and_every_latency_statistic() -> None:
    result = parse_redis_benchmark(SET_GET.read_text())
    assert result.has_header and not result.notes
    assert [r.test for r in result.rows] == ["SET", "GET"]
    get = result.row("GET")
    assert get.requests_per_s == pytest.approx(48543.69)
    assert get.latency_ms == {"mean": 0.661, "min": 0.128, "max": 4.543}
    assert get.percentiles_ms == {"50": 0.615, "95": 1.055, "99": 1.799}
    measurements = redis_benchmark_measurements(result, {"service": "kube-system/redis"})
    assert len(measurements) == 2 * 7  # ops_per_s + mean/min/max + p50/p95/p99, per test
    found = _by_labels(measurements)
    p99 = found[
        ("latency", (("op", "GET"), ("percentile", "99"), ("service", "kube-system/redis"), ("stat", "percentile")))
    ]
    assert (p99.value, p99.unit) == (1.799, "ms")
    ops = found[("ops_per_s", (("op", "SET"), ("service", "kube-system/redis")))]
    assert (ops.value, ops.unit) == (56657.23, "req/s")
    assert all(m.unit in ("ms", "req/s") for m in measurements)


def test_redis7_default_test_list_keeps_test_names_as_printed() -> None:
    result = parse_redis_benchmark(ALL_TESTS.read_text())
    names = [r.test for r in result.rows]
    assert len(names) == 20 and names[0] == "PING_INLINE" and names[-1] == "MSET (10 keys)"
    assert "LPUSH" in names and "LPUSH (needed to benchmark LRANGE)" in names
    lrange = result.row("LRANGE_500 (first 500 elements)")
    assert lrange.requests_per_s == pytest.approx(19607.84) and lrange.percentiles_ms["99"] == pytest.approx(0.663)


def test_pre_62_rows_without_header_give_ops_only() -> None:
    result = parse_redis_benchmark(OLD.read_text())
    assert not result.has_header
    assert [(r.test, r.requests_per_s) for r in result.rows][2:4] == [("SET", 40160.64), ("GET", 41493.78)]
    measurements = redis_benchmark_measurements(result)
    assert {m.metric for m in measurements} == {"ops_per_s"} and len(measurements) == 5


def test_warnings_before_the_rows_are_kept_as_notes_and_crlf_is_accepted() -> None:
    text = "WARNING: Could not fetch server CONFIG\r\n" + SET_GET.read_text().replace("\n", "\r\n")
    result = parse_redis_benchmark(text)
    assert result.notes == ("WARNING: Could not fetch server CONFIG",)
    assert len(result.rows) == 2


def test_connection_refused_output_is_a_parse_error_quoting_the_tool() -> None:
    with pytest.raises(ParseError) as exc:
        parse_redis_benchmark(REFUSED.read_text())
    message = str(exc.value)
    assert "no CSV result rows" in message and "at line 2" in message
    assert "Could not fetch server CONFIG" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no CSV result rows"),
        ("SET: 40160.64 requests per second\n", "no CSV result rows"),  # run without --csv
        (HEADER + "\n", "a header but no result rows"),
        ('"test","avg_latency_ms"\n"SET","0.1"\n', "lacks the 'rps' column"),
        (HEADER + '\n"SET","fast","0.1","0.1","0.1","0.1","0.1","0.1"\n', "column 'rps' is not a number: 'fast'"),
        (HEADER + '\n"SET","100.0","0.1"\n', "expected 8 fields"),
        (HEADER + '\n"SET","100","0.1","0.1","0.1","0.1","nan","0.1"\n', "finite number >= 0"),
        (
            HEADER + '\n"SET","100","0.1","0.1","0.1","0.1","0.1","0.1"\nError: Connection reset by peer\n',
            "not a CSV row",
        ),
        ('"SET","1.0"\n"SET","2.0"\n', "reported twice"),
        ('"SET","1.0","0.2"\n', "must have 2 fields"),
        (HEADER + "\n" + HEADER + "\n", "a second header"),
        ('"","1.0"\n', "empty test name"),
    ],
)
def test_malformed_input_is_a_parse_error_with_an_excerpt(text: str, expected: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_redis_benchmark(text)
    message = str(exc.value)
    assert message.startswith("redis-benchmark csv: ") and expected in message
    assert "\n" not in message


def test_the_excerpt_names_the_offending_line() -> None:
    text = HEADER + '\n"SET","100","0.1","0.1","0.1","0.1","0.1","0.1"\n"GET","x","0.1","0.1","0.1","0.1","0.1","0.1"\n'
    with pytest.raises(ParseError, match=r"at line 3: '\"GET\",\"x\""):
        parse_redis_benchmark(text)
