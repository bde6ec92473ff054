"""The serving metric definitions (TTFT, TPOT, ITL, NTPOT, goodput, error rate, in-flight), checked by hand."""

from __future__ import annotations

import json

import pytest

from harness.errors import ParseError
from harness.parsers.stream_samples import Slo, StreamSample, parse_stream_samples, stream_measurements, summarise


def line(t, ttft, e2e, n, *, q=0.0, status=200, err="", itl=None, ver="v1", body=None):
    obj = {"t": t, "q": q, "ttft": ttft, "e2e": e2e, "n": n, "chunks": n, "status": status, "err": err, "ver": ver}
    obj["itl"] = itl if itl is not None else []
    if body is not None:
        obj["body"] = body
    return json.dumps(obj)


def test_per_request_definitions():
    (s,) = parse_stream_samples(line(5.0, 0.1, 0.72, 32, itl=[20000] * 31))
    assert s.ok and s.ttft == 0.1
    assert s.tpot == pytest.approx((0.72 - 0.1) / 31)  # vLLM / inference-perf TPOT, excludes TTFT
    assert s.ntpot == pytest.approx(0.72 / 32)  # normalised TPOT includes TTFT
    assert s.itl == (0.02,) * 31  # written in microseconds


def test_tpot_undefined_for_one_token_and_failures():
    one, failed = parse_stream_samples(
        line(0, 0.1, 0.1, 1) + "\n" + line(0, None, 0.01, 0, status=404, err="HTTP 404", body='{"message":"x"}')
    )
    assert one.tpot is None and one.ok
    assert not failed.ok and failed.tpot is None and failed.ntpot is None and failed.body == '{"message":"x"}'


def test_summary_percentiles_rates_goodput_and_warmup():
    # 1 warm-up request at t=0, then 10 requests at t=1..10 with TTFT 10..100 ms, 11 tokens, e2e = TTFT + 10*20 ms
    lines = [line(0.0, 5.0, 5.0, 11)]  # the slow first request is excluded by the 1 s warm-up
    for i in range(1, 11):
        ttft = 0.01 * i
        lines.append(line(float(i), ttft, ttft + 0.2, 11, itl=[20000] * 10))
    lines.append(line(10.5, None, 0.5, 0, status=503, err="HTTP 503"))
    summary = summarise(parse_stream_samples("\n".join(lines)), warmup_s=1.0, slo=Slo(ttft_s=0.05, tpot_s=0.021))
    assert summary.warmup_excluded == 1 and summary.requests == 11 and summary.failures == 1
    assert summary.error_rate == pytest.approx(1 / 11)
    # window: first send after the warm-up (t=1) to the last send (the failure at t=10.5); the 10 successes were
    # all sent before the last send
    assert summary.window_s == pytest.approx(9.5)
    assert summary.requests_per_s == pytest.approx(10 / 9.5)
    assert summary.output_tokens_per_s == pytest.approx(110 / 9.5)
    # numpy-default linear interpolation over TTFT 10..100 ms
    assert summary.ttft[50] == pytest.approx(0.055)  # percentiles: every request of the window
    assert summary.ttft[90] == pytest.approx(0.091)
    assert summary.tpot[50] == pytest.approx(0.02)
    assert summary.itl[99] == pytest.approx(0.02)
    # goodput: TTFT <= 50 ms -> requests 1..5 of 11 (the failure never counts)
    assert summary.goodput_requests == 5
    assert summary.goodput_ratio == pytest.approx(5 / 11)
    assert summary.goodput_per_s == pytest.approx(5 / 9.5)
    # in flight: time on the wire inside [1, 10.5]: the ten requests whole, the warm-up request's [1, 5], the
    # failure (sent at the window's end) nothing
    busy = sum(0.01 * i + 0.2 for i in range(1, 11)) + 4.0
    assert summary.inflight_mean == pytest.approx(busy / 9.5)
    assert summary.errors == {"HTTP 503": 1} and summary.versions == {"v1": 10}


def test_goodput_tpot_bound_and_queue_kept_out_of_ttft():
    samples = parse_stream_samples(
        line(0, 0.1, 0.1 + 31 * 0.02, 32, q=0.4) + "\n" + line(1, 0.1, 0.1 + 31 * 0.031, 32, q=0.0)
    )
    summary = summarise(samples, slo=Slo(ttft_s=0.5, tpot_s=0.03))
    assert summary.goodput_requests == 1  # the second misses TPOT <= 30 ms
    assert summary.ttft[50] == pytest.approx(0.1)  # queueing is not inside TTFT
    assert summary.queue[99] == pytest.approx(0.396)


def test_measurements_names_units_and_labels():
    samples = parse_stream_samples("\n".join(line(float(i), 0.1, 0.72, 32) for i in range(5)))
    ms = stream_measurements(summarise(samples, slo=Slo(ttft_s=0.5, tpot_s=0.03)), {"api": "chat"})
    by = {(m.metric, m.labels.get("percentile", m.labels.get("stat", ""))): m for m in ms}
    assert by[("ttft", "99")].value == pytest.approx(100.0) and by[("ttft", "99")].unit == "ms"
    assert by[("tpot", "50")].value == pytest.approx(20.0)
    assert by[("error_rate", "")].unit == "%" and by[("error_rate", "")].value == 0
    assert by[("goodput_ratio", "")].value == 100 and by[("goodput_ratio", "")].labels["slo_ttft_ms"] == "500"
    assert by[("goodput", "")].unit == "req/s"
    assert all(m.labels["api"] == "chat" for m in ms)


def test_warmup_longer_than_run_is_an_error():
    samples = parse_stream_samples(line(0.0, 0.1, 0.2, 2))
    with pytest.raises(ValueError, match="no request was sent after the 5 s warm-up"):
        summarise(samples, warmup_s=5)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"t": 1', "invalid JSON"),
        ('{"t": 1, "q": 0, "ttft": 0.1, "e2e": 1}', "missing ['n', 'status']"),
        ('{"t": 1, "q": 0, "ttft": -1, "e2e": 1, "n": 2, "status": 200}', "wrong type or negative"),
        ('{"t": 1, "q": 0, "ttft": 0.1, "e2e": 1, "n": 2, "status": 200, "zz": 1}', "unknown keys ['zz']"),
        ("[]", "must be a JSON object"),
    ],
)
def test_malformed_samples_name_the_line(text, needle):
    with pytest.raises(ParseError) as info:
        parse_stream_samples(line(0, 0.1, 0.2, 2) + "\n" + text)
    assert needle in str(info.value) and "line 2" in str(info.value)


def test_no_samples():
    with pytest.raises(ParseError, match="no samples"):
        parse_stream_samples("\n")


def test_sample_dataclass_is_frozen():
    s = StreamSample(start=0, queue=0, ttft=0.1, e2e=0.2, output_tokens=2, status=200)
    with pytest.raises(AttributeError):
        s.e2e = 1.0  # type: ignore[misc]


def test_closed_loop_steady_state_in_flight_and_rate_have_no_edge_bias():
    # 4 streams, each request 0.7 s back to back, phases 0.1 s apart, 20 s; warm-up 1 s
    lines = [line(0.1 * k + 0.7 * i, 0.1, 0.7, 32) for k in range(4) for i in range(int((20 - 0.1 * k) / 0.7))]
    summary = summarise(parse_stream_samples("\n".join(lines)), warmup_s=1.0)
    assert summary.inflight_mean == pytest.approx(4.0, rel=0.02)
    assert summary.requests_per_s == pytest.approx(4 / 0.7, rel=0.03)
