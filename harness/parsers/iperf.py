"""iperf3 ``-J`` (JSON) client output: TCP throughput between two endpoints.

Why the receiver's sum is the headline: the sender's byte count includes data still in flight or in socket buffers
when the test ends; ``end.sum_received`` is what actually arrived (iperf3's own summary prints both, and the
receiver line is the one to quote). Retransmits come from the sender side (TCP only).

The document is found in a container log that may hold other lines (a retry loop's messages): the first line that
is exactly ``{`` starts it. iperf3 reports its own failures inside the JSON (``"error": "unable to connect..."``),
with exit code 0 in some versions, so an ``error`` key is a parse failure carrying iperf3's message.

Measurements (labels ``protocol``, ``streams``, ``direction`` = ``forward``|``reverse``): ``throughput`` (Gbit/s,
1e9 bit/s, received), ``throughput_sent`` (Gbit/s), ``retransmits`` (count, when TCP reports them),
``cpu_host``/``cpu_remote`` (percent of one machine, iperf3's cpu_utilization_percent.host_total/remote_total).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import ParseError
from harness.measurement import Measurement
from harness.parsers._lines import json_error, line_at, parse_error
from harness.parsers._numbers import is_finite

__all__ = ["IperfResult", "iperf_measurements", "parse_iperf3"]

_TOOL = "iperf3 json"


@dataclass(frozen=True, slots=True, kw_only=True)
class IperfResult:
    """The summary of one iperf3 test, from the client's JSON."""

    version: str
    protocol: str
    streams: int
    reverse: bool
    duration_s: float
    omit_s: float
    bytes_sent: int
    bytes_received: int
    bits_per_second_sent: float
    bits_per_second_received: float
    retransmits: int | None
    cpu_host_pct: float | None
    cpu_remote_pct: float | None
    remote_host: str


def _document(text: str) -> dict[str, Any]:
    start = 0 if text.startswith("{") else text.find("\n{")
    if start < 0:
        no, line = line_at(text, len(text.rstrip()))
        raise parse_error(_TOOL, "no JSON document (no line starting with '{') in the output", no, line)
    start += 0 if text.startswith("{") else 1
    try:
        doc, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise json_error(_TOOL, text, exc) from None
    if not isinstance(doc, dict):
        raise ParseError(f"{_TOOL}: the document is not an object")
    return doc


def _number(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = obj.get(key)
    if not is_finite(value):
        raise ParseError(f"{_TOOL}: {where}.{key} is missing or not a number (got {value!r})")
    return float(value)


def parse_iperf3(text: str) -> IperfResult:
    """The summary of the iperf3 client JSON in ``text``; ParseError when iperf3 reported an error or the
    summary (``end.sum_sent``/``end.sum_received``) is missing."""
    doc = _document(text)
    if doc.get("error"):
        raise ParseError(f"{_TOOL}: iperf3 reported an error: {doc['error']}")
    start, end = doc.get("start") or {}, doc.get("end") or {}
    test = start.get("test_start") or {}
    sent, received = end.get("sum_sent"), end.get("sum_received")
    if not isinstance(sent, dict) or not isinstance(received, dict):
        if isinstance(end.get("sum"), dict):  # UDP tests summarise in end.sum only
            sent = received = end["sum"]
        else:
            raise ParseError(f"{_TOOL}: no end.sum_sent/end.sum_received summary (the test did not finish)")
    connected = start.get("connected") or [{}]
    cpu = end.get("cpu_utilization_percent") or {}
    retransmits = sent.get("retransmits")
    return IperfResult(
        version=str(start.get("version", "")),
        protocol=str(test.get("protocol", "TCP")),
        streams=int(test.get("num_streams", len(end.get("streams") or []) or 1)),
        reverse=bool(test.get("reverse", 0)),
        duration_s=_number(received, "seconds", "end.sum_received"),
        omit_s=float(test.get("omit", 0) or 0),
        bytes_sent=int(_number(sent, "bytes", "end.sum_sent")),
        bytes_received=int(_number(received, "bytes", "end.sum_received")),
        bits_per_second_sent=_number(sent, "bits_per_second", "end.sum_sent"),
        bits_per_second_received=_number(received, "bits_per_second", "end.sum_received"),
        retransmits=int(retransmits) if isinstance(retransmits, int) else None,
        cpu_host_pct=float(cpu["host_total"]) if isinstance(cpu.get("host_total"), int | float) else None,
        cpu_remote_pct=float(cpu["remote_total"]) if isinstance(cpu.get("remote_total"), int | float) else None,
        remote_host=str(connected[0].get("remote_host", "")) if connected else "",
    )


def iperf_measurements(result: IperfResult, *, extra_labels: Mapping[str, str] | None = None) -> list[Measurement]:
    """Throughput (received and sent), retransmits and CPU use, labelled with protocol, streams and direction."""
    labels = {
        **dict(extra_labels or {}),
        "tool": "iperf3",
        "protocol": result.protocol.lower(),
        "streams": str(result.streams),
        "direction": "reverse" if result.reverse else "forward",
    }
    out = [
        Measurement(metric="throughput", value=result.bits_per_second_received / 1e9, unit="Gbit/s", labels=labels),
        Measurement(metric="throughput_sent", value=result.bits_per_second_sent / 1e9, unit="Gbit/s", labels=labels),
    ]
    if result.retransmits is not None:
        out.append(Measurement(metric="retransmits", value=result.retransmits, unit="count", labels=labels))
    for metric, value in (("cpu_host", result.cpu_host_pct), ("cpu_remote", result.cpu_remote_pct)):
        if value is not None:
            out.append(Measurement(metric=metric, value=value, unit="%", labels=labels))
    return out
