"""locust --csv stats (CRLF, version-dependent columns) and our raw samples with exact percentiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.parsers.locust import (
    locust_measurements,
    parse_locust_stats_csv,
    parse_raw_samples,
    raw_sample_measurements,
)

DATA = Path(__file__).resolve().parent.parent / "data"
CSV = "locust-2.x_results_stats_retaildemostore.csv"


def read_bytes_as_text(name: str) -> str:
    return (DATA / name).read_bytes().decode()  # keep the CRLF line endings as written


def test_real_stats_csv_crlf():
    text = read_bytes_as_text(CSV)
    assert "\r\n" in text
    rows = parse_locust_stats_csv(text)
    assert len(rows) == 6 and [r.name for r in rows[:5]] == [
        "/carts",
        "/carts/*",
        "/carts/*",
        "/products/*",
        "/users/random",
    ]
    agg = rows[-1]
    assert agg.aggregated and agg.type is None and agg.name == "Aggregated"
    assert (agg.requests, agg.failures, agg.median_ms, agg.mean_ms) == (37219, 1, 1500.0, 5826.092150892615)
    assert (agg.min_ms, agg.max_ms) == (32.15787501540035, 53154.64070899179)
    assert (agg.requests_per_s, agg.failures_per_s) == (631.3258640849056, 0.01696246175568676)
    assert list(agg.percentiles_ms) == ["50", "66", "75", "80", "90", "95", "98", "99", "99.9", "99.99", "100"]
    assert (
        agg.percentiles_ms["50"],
        agg.percentiles_ms["95"],
        agg.percentiles_ms["99"],
        agg.percentiles_ms["100"],
    ) == (1500, 33000, 46000, 53000)
    failing = [r for r in rows if r.failures]
    assert [(r.type, r.name, r.failures) for r in failing] == [("GET", "/products/*", 1), (None, "Aggregated", 1)]


def test_stats_measurements():
    ms = locust_measurements(parse_locust_stats_csv(read_bytes_as_text(CSV)))
    agg = [m for m in ms if m.labels["endpoint"] == "Aggregated"]
    assert all("method" not in m.labels for m in agg)
    p99 = next(m for m in agg if m.metric == "latency" and m.labels.get("percentile") == "99")
    assert (p99.value, p99.unit, p99.labels["stat"]) == (46000, "ms", "percentile")
    rps = next(m for m in agg if m.metric == "requests_per_s")
    assert (rps.value, rps.unit) == (631.3258640849056, "req/s")
    ratio = next(m for m in agg if m.metric == "failure_ratio")
    assert ratio.unit == "%" and ratio.value == pytest.approx(100 / 37219)
    put = [m for m in ms if m.labels.get("method") == "PUT" and m.metric == "requests"]
    assert put[0].value == 3736


def test_other_locust_versions_columns():
    old = (
        '"Method","Name","# requests","# failures","Median response time","Average response time",'
        '"Min response time","Max response time","Average Content Size","Requests/s"\n'
        '"GET","/",10,0,12,13.5,10,20,100,2.5\n'
        '"None","Total",10,0,12,13.5,10,20,100,2.5\n'
    )
    (row, total) = parse_locust_stats_csv(old)
    assert (row.type, row.requests, row.median_ms, row.percentiles_ms) == ("GET", 10, 12.0, {})
    assert total.name == "Total"
    new = (
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
        "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,99.999%,100%\r\n"
        "GET,/empty,0,0,0,0,0,0,0,0.0,0.0,N/A,N/A,N/A\r\n"
    )
    (empty,) = parse_locust_stats_csv(new)
    assert empty.percentiles_ms == {"50": None, "99.999": None, "100": None}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty stats file"),
        ("Type,Name\r\nGET,/\r\n", "header lacks columns"),
        (None, "row has 21 fields"),
        (None, "not a number: 'abc'"),
    ],
)
def test_malformed_csv(text, needle):
    real = read_bytes_as_text(CSV)
    if needle.startswith("row has"):
        text = real.replace(",51000\r\n", "\r\n", 1)
    elif "abc" in needle:
        text = real.replace("15375", "abc")
    with pytest.raises(ParseError) as info:
        parse_locust_stats_csv(text)
    assert needle in str(info.value) and "\n" not in str(info.value)
    if text == real.replace("15375", "abc"):
        assert "at line 2: 'POST,/carts,abc" in str(info.value)


def sample(t, name, ok, latency, ttft=None, tokens=None):
    return json.dumps({"t": t, "name": name, "ok": ok, "latency_ms": latency, "ttft_ms": ttft, "tokens": tokens})


def test_raw_samples_exact_percentiles_and_rates():
    lines = [sample(1000.0 + i, "chat", True, float(i + 1), ttft=0.5 * (i + 1), tokens=10) for i in range(10)]
    lines.append(sample(1010.0, "chat", False, 0.1))
    lines.append("")
    lines.append(sample(1005.0, "health", True, 3.0))
    samples = parse_raw_samples("\n".join(lines))
    assert len(samples) == 12 and samples[10].ok is False and samples[0].tokens == 10
    ms = raw_sample_measurements(samples, qs=(50, 99))

    def get(metric, endpoint, **labels):
        (m,) = [
            m
            for m in ms
            if m.metric == metric
            and m.labels["endpoint"] == endpoint
            and all(m.labels.get(k) == v for k, v in labels.items())
        ]
        return m

    assert get("latency", "chat", percentile="50").value == 5.5  # the failed 0.1 ms request is excluded
    assert get("latency", "chat", percentile="99").value == pytest.approx(9.91)
    assert get("ttft", "chat", percentile="50").value == 2.75
    assert get("failures", "chat").value == 1 and get("failure_ratio", "chat").value == pytest.approx(100 / 11)
    assert get("requests_per_s", "chat").value == pytest.approx(11 / 10)
    assert get("tokens_per_s", "chat").value == pytest.approx(100 / 10)
    assert get("requests", "Aggregated").value == 12
    assert not [m for m in ms if m.labels["endpoint"] == "health" and m.metric == "requests_per_s"]  # zero span


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"t": 1, "name": "a", "ok": true', "invalid JSON"),
        ('{"t": 1, "name": "a", "ok": true}', "missing ['latency_ms']"),
        ('{"t": 1, "name": "a", "ok": "yes", "latency_ms": 1}', "wrong type"),
        ('{"t": 1, "name": "a", "ok": true, "latency_ms": 1, "extra": 2}', "unknown keys ['extra']"),
        ("[1]", "must be a JSON object"),
    ],
)
def test_malformed_raw_samples(line, needle):
    text = sample(0.0, "a", True, 1.0) + "\n" + line + "\n"
    with pytest.raises(ParseError) as info:
        parse_raw_samples(text)
    assert needle in str(info.value) and "at line 2:" in str(info.value)


def test_no_raw_samples():
    with pytest.raises(ParseError, match="no samples"):
        parse_raw_samples("\n\n")
