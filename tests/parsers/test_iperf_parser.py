"""iperf3 -J client output (iperf 3.12, generated here over loopback; see tests/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.parsers.iperf import iperf_measurements, parse_iperf3

DATA = Path(__file__).resolve().parents[1] / "data"
ONE_STREAM = DATA / "iperf3-3.12_tcp-loopback_t2-P1_client_generated.json"
FOUR_REVERSE = DATA / "iperf3-3.12_tcp-loopback_t2-O1-P4-reverse_client_generated.json"
REFUSED = DATA / "iperf3-3.12_connection-refused_client_generated.json"


def test_single_stream_summary_uses_the_receiver_side() -> None:
    result = parse_iperf3(ONE_STREAM.read_text())
    assert result.version == "iperf 3.12" and result.protocol == "TCP"
    assert (result.streams, result.reverse) == (1, False)
    assert result.bytes_received == 5605949440 == result.bytes_sent
    assert result.bits_per_second_received == pytest.approx(22421241738.44182)
    assert result.bits_per_second_sent == pytest.approx(22421622862.58233)
    assert result.retransmits == 2
    assert result.remote_host == "127.0.0.1"
    by = {m.metric: m for m in iperf_measurements(result, extra_labels={"path": "same-node"})}
    assert by["throughput"].value == pytest.approx(22.42124173844182)
    assert by["throughput"].unit == "Gbit/s"
    assert by["throughput"].labels == {
        "path": "same-node", "tool": "iperf3", "protocol": "tcp", "streams": "1", "direction": "forward"
    }  # fmt: skip
    assert by["retransmits"].value == 2


def test_parallel_reverse_streams() -> None:
    result = parse_iperf3(FOUR_REVERSE.read_text())
    assert (result.streams, result.reverse, result.omit_s) == (4, True, 1.0)
    assert result.bits_per_second_received == pytest.approx(18342775558.65454)
    assert result.cpu_remote_pct == pytest.approx(99.1592549935481)
    labels = iperf_measurements(result)[0].labels
    assert (labels["streams"], labels["direction"]) == ("4", "reverse")


def test_document_after_retry_messages_in_the_log() -> None:
    text = '"error": "unable to connect to server: Connection refused"\n' + ONE_STREAM.read_text()
    assert parse_iperf3(text).bytes_received == 5605949440


def test_iperf3_error_is_a_parse_failure_with_its_message() -> None:
    with pytest.raises(ParseError, match="unable to connect to server: Connection refused"):
        parse_iperf3(REFUSED.read_text())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no JSON document"),
        ("iperf3: error - unable to connect\n", "no JSON document"),
        ('{"start": {}, "end": {\n', "invalid JSON"),
        ('{"start": {}, "intervals": [], "end": {}}', "did not finish"),
        ('{"end": {"sum_sent": {"bytes": 1, "bits_per_second": 8}, "sum_received": {"bytes": 1}}}', "seconds"),
    ],
)
def test_bad_documents_fail_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_iperf3(text)
