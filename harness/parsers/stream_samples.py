"""Raw per-request samples of streamed completions (``workloads/inference-load/locustfile.py``) and the serving
metrics computed from them.

Why a module of its own: the tools disagree on what "TPOT" means (guidellm's includes TTFT; inference-perf's
NTPOT is e2e/N; ../shared/research/inference-loadgen-anchors.md section 3), so the definitions are written down
once, here, and unit-tested. Every value comes from the raw samples; locust's stored percentiles are never used
(they are rounded to 10 ms between 100 ms and 1 s).

Definitions (docs/serving-metrics.md maps them to inference-perf's and guidellm's names):

- **TTFT**: time from sending the request to the first chunk carrying non-empty text/content (a role-only first
  delta and the usage chunk do not count). Client-side queueing is *not* inside it; it is ``queue``.
- **TPOT** = (e2e - TTFT) / (output tokens - 1), per request with >= 2 tokens (vLLM, inference-perf "TPOT",
  guidellm "ITL").
- **ITL**: every gap between consecutive content chunks, pooled over requests (inference-perf "ITL").
- **NTPOT** (normalised TPOT) = e2e / output tokens (inference-perf "NTPOT"; guidellm's "TPOT" is the same idea
  measured to the last token).
- **e2e**: send to the end of the response.
- **queue**: how long a request waited client-side before it could be sent (open-loop shapes at their in-flight
  cap); 0 in closed-loop shapes.
- **send lateness** (open loop): how late the generator itself was for a scheduled arrival, before any wait for
  an in-flight slot: its own timing error, not the server's (``send_lateness``). A generator that cannot keep
  its schedule offers less load than asked; this says by how much.
- **in-flight**: the time-average of requests on the wire during the window (every request's time inside it,
  warm-up requests included; Little's law); it must equal the asked concurrency in closed-loop runs, or the
  client was the bottleneck.
- **window**: from the first send after the warm-up to the last send (the steady state: the ramp before it and
  the drain after it are left out); requests sent during the warm-up are excluded from every latency figure
  and counted in ``warmup_excluded``. A run with a single send uses that request's duration.
- **requests/s, output tokens/s**: successful requests sent in the window before its last send (n - 1 send
  intervals; their tokens) / window length.
- **error rate**: failed requests / requests (a failure is a non-200 status, a transport error or a stream
  without any content token).
- **goodput**: requests that succeeded *and* met the SLO pair (TTFT <= bar and TPOT <= bar), as a share of all
  requests (``goodput_ratio``, %) and per second of the window, counted like requests/s (``goodput``, req/s,
  vLLM's "request goodput").

Percentiles interpolate linearly between closest ranks (numpy's default, :attr:`harness.statistics.Method.LINEAR`),
as :mod:`harness.parsers.locust` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.measurement import Measurement
from harness.parsers._lines import json_lines, parse_error
from harness.parsers._numbers import finite, is_finite
from harness.statistics import Method, percentile_text, percentiles, stat_measurements

__all__ = [
    "Slo",
    "StreamSample",
    "StreamSummary",
    "parse_stream_samples",
    "stream_measurements",
    "summarise",
]

_TOOL = "stream samples"
_KEYS = frozenset(
    {"t", "q", "ttft", "e2e", "n", "chunks", "itl", "status", "err", "ver", "pod", "f", "body", "sl", "lt"}
)
_REQUIRED = ("t", "q", "ttft", "e2e", "n", "status")
QUANTILES: tuple[float, ...] = (50, 90, 99)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSample:
    """One request; times in seconds (``itl`` too); ``start`` on a monotonic clock shared by the load processes."""

    start: float
    queue: float
    ttft: float | None
    e2e: float
    output_tokens: int
    status: int
    error: str = ""
    chunks: int = 0
    itl: tuple[float, ...] = ()
    version: str = ""
    pod: str = ""
    inflight: int = 0
    body: str = ""
    server_late: float | None = None  # the reference server's own first-token lateness, when it reports it
    lateness: float | None = None  # open loop: the generator's own lateness for this scheduled arrival

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error and self.ttft is not None

    @property
    def tpot(self) -> float | None:
        """(e2e - TTFT) / (tokens - 1); None with fewer than two tokens or no first token."""
        if self.ttft is None or self.output_tokens < 2:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1)

    @property
    def ntpot(self) -> float | None:
        """e2e / tokens (normalised TPOT)."""
        return self.e2e / self.output_tokens if self.output_tokens > 0 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Slo:
    """An MLPerf-style latency pair a request must meet to count towards goodput (seconds)."""

    ttft_s: float
    tpot_s: float
    source: str = ""

    def met_by(self, sample: StreamSample) -> bool:
        if not sample.ok or sample.ttft is None or sample.ttft > self.ttft_s:
            return False
        tpot = sample.tpot
        return tpot is None or tpot <= self.tpot_s


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSummary:
    """What a load run measured (seconds, counts); percentile maps are q -> value, empty when nothing to rank."""

    requests: int
    failures: int
    warmup_excluded: int
    window_s: float
    requests_per_s: float
    output_tokens_per_s: float
    inflight_mean: float  # Little's law: sum(e2e) / window
    ttft: Mapping[float, float] = field(default_factory=dict)
    tpot: Mapping[float, float] = field(default_factory=dict)
    itl: Mapping[float, float] = field(default_factory=dict)
    ntpot: Mapping[float, float] = field(default_factory=dict)
    e2e: Mapping[float, float] = field(default_factory=dict)
    queue: Mapping[float, float] = field(default_factory=dict)
    lateness: Mapping[float, float] = field(default_factory=dict)
    ttft_mean: float | None = None
    tpot_mean: float | None = None
    goodput_requests: int | None = None  # of all requests in the window
    goodput_counted: int | None = None  # of those counted towards the rates (sent before the last send)
    slo: Slo | None = None
    errors: Mapping[str, int] = field(default_factory=dict)  # error text -> count
    versions: Mapping[str, int] = field(default_factory=dict)  # backend version -> successful requests

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def goodput_ratio(self) -> float | None:
        if self.goodput_requests is None or not self.requests:
            return None
        return self.goodput_requests / self.requests

    @property
    def goodput_per_s(self) -> float | None:
        if self.goodput_counted is None or self.window_s <= 0:
            return None
        return self.goodput_counted / self.window_s


def _sample(obj: Any, line_no: int, line: str) -> StreamSample:
    if not isinstance(obj, dict):
        raise parse_error(_TOOL, "each line must be a JSON object", line_no, line)
    missing = [k for k in _REQUIRED if k not in obj]
    unknown = sorted(set(obj) - _KEYS)
    if missing or unknown:
        raise parse_error(_TOOL, f"missing {missing}" if missing else f"unknown keys {unknown}", line_no, line)
    ttft, itl = obj["ttft"], obj.get("itl") or []
    if (
        not is_finite(obj["t"])
        or not is_finite(obj["q"])
        or obj["q"] < 0
        or not is_finite(obj["e2e"])
        or obj["e2e"] < 0
        or (ttft is not None and (not is_finite(ttft) or ttft < 0))
        or not isinstance(obj["n"], int)
        or isinstance(obj["n"], bool)
        or obj["n"] < 0
        or not isinstance(obj["status"], int)
        or not isinstance(itl, list)
        or not all(is_finite(g) and g >= 0 for g in itl)
    ):
        raise parse_error(_TOOL, "wrong type or negative value", line_no, line)
    return StreamSample(
        start=float(obj["t"]),
        queue=float(obj["q"]),
        ttft=None if ttft is None else float(ttft),
        e2e=float(obj["e2e"]),
        output_tokens=obj["n"],
        status=obj["status"],
        error=str(obj.get("err") or ""),
        chunks=int(obj.get("chunks") or 0),
        itl=tuple(g / 1e6 for g in itl),  # written in microseconds
        version=str(obj.get("ver") or ""),
        pod=str(obj.get("pod") or ""),
        inflight=int(obj.get("f") or 0),
        body=str(obj.get("body") or ""),
        server_late=finite(obj.get("sl")),
        lateness=finite(obj.get("lt")),
    )


def parse_stream_samples(text: str) -> tuple[StreamSample, ...]:
    """Samples from the JSON lines the load user classes write (one file per load process, concatenated); blank
    lines are skipped; anything malformed is a ParseError naming the line; no sample at all is a ParseError."""
    out = [_sample(obj, line_no, line) for line_no, line, obj in json_lines(text, _TOOL)]
    if not out:
        raise parse_error(_TOOL, "no samples (the load generator sent no request)", None, text[:80] or "<empty>")
    return tuple(out)


def _ranked(values: Iterable[float], qs: Sequence[float]) -> dict[float, float]:
    data = list(values)
    return percentiles(data, qs, method=Method.LINEAR) if data else {}


def summarise(
    samples: Sequence[StreamSample],
    *,
    warmup_s: float = 0.0,
    slo: Slo | None = None,
    qs: Sequence[float] = QUANTILES,
) -> StreamSummary:
    """The run's figures (definitions in the module docstring). Raises ValueError when the warm-up leaves no
    request: a run too short for its warm-up measured nothing."""
    origin = min((s.start for s in samples), default=0.0)
    kept = [s for s in samples if s.start - origin >= warmup_s]
    if not kept:
        raise ValueError(f"no request was sent after the {warmup_s:g} s warm-up ({len(samples)} during it)")
    ok = [s for s in kept if s.ok]
    begin = min(s.start for s in kept)
    last_send = max(s.start for s in kept)
    if last_send > begin:
        # steady state: the span of the sends; a request counts towards the rates when it was sent before the
        # last send (n - 1 intervals), and in-flight integrates every request's time on the wire inside the span
        # (also those sent during the warm-up), so the ramp and the drain at the edges do not bias either
        window = last_send - begin
        counted = [s for s in ok if s.start < last_send]
        busy = sum(max(0.0, min(s.start + s.queue + s.e2e, last_send) - max(s.start + s.queue, begin)) for s in samples)
    else:  # a single send: the rate over its own duration
        window = max(s.start + s.queue + s.e2e for s in kept) - begin
        counted = ok
        busy = sum(s.e2e for s in kept)
    errors: dict[str, int] = {}
    for s in kept:
        if not s.ok:
            reason = s.error or f"HTTP {s.status}"
            errors[reason] = errors.get(reason, 0) + 1
    versions: dict[str, int] = {}
    for s in ok:
        versions[s.version] = versions.get(s.version, 0) + 1
    tpots = [t for s in ok if (t := s.tpot) is not None]
    ttfts = [s.ttft for s in ok if s.ttft is not None]
    return StreamSummary(
        requests=len(kept),
        failures=len(kept) - len(ok),
        warmup_excluded=len(samples) - len(kept),
        window_s=window,
        requests_per_s=len(counted) / window if window > 0 else 0.0,
        output_tokens_per_s=sum(s.output_tokens for s in counted) / window if window > 0 else 0.0,
        inflight_mean=busy / window if window > 0 else 0.0,
        ttft=_ranked(ttfts, qs),
        tpot=_ranked(tpots, qs),
        itl=_ranked((g for s in ok for g in s.itl), qs),
        ntpot=_ranked((v for s in ok if (v := s.ntpot) is not None), qs),
        e2e=_ranked((s.e2e for s in ok), qs),
        queue=_ranked((s.queue for s in kept), qs),
        lateness=_ranked((s.lateness for s in kept if s.lateness is not None), qs),
        ttft_mean=sum(ttfts) / len(ttfts) if ttfts else None,
        tpot_mean=sum(tpots) / len(tpots) if tpots else None,
        goodput_requests=None if slo is None else sum(1 for s in kept if slo.met_by(s)),
        goodput_counted=None if slo is None else sum(1 for s in counted if slo.met_by(s)),
        slo=slo,
        errors=errors,
        versions=versions,
    )


def stream_measurements(summary: StreamSummary, labels: Mapping[str, str] | None = None) -> list[Measurement]:
    """Measurements of one run: ``ttft``/``tpot``/``itl``/``ntpot``/``e2e_latency``/``queue_delay`` and
    ``send_lateness`` (open loop) in ms (``stat=percentile`` + ``percentile``, ``stat=mean`` for TTFT/TPOT),
    ``requests_per_s``,
    ``output_tokens_per_s``, ``error_rate`` (%), ``inflight`` (count, Little's law), ``requests``/``failures``
    (count), and with an SLO ``goodput`` (req/s) and ``goodput_ratio`` (%) labelled with the SLO pair."""
    base = dict(labels or {})
    out: list[Measurement] = []

    def add(metric: str, value: float, unit: str, **extra: str) -> None:
        out.append(Measurement(metric=metric, value=value, unit=unit, labels={**base, **extra}))

    for metric, ranked in (
        ("ttft", summary.ttft),
        ("tpot", summary.tpot),
        ("itl", summary.itl),
        ("ntpot", summary.ntpot),
        ("e2e_latency", summary.e2e),
        ("queue_delay", summary.queue),
        ("send_lateness", summary.lateness),
    ):
        in_ms = [(percentile_text(q), value * 1e3) for q, value in ranked.items()]
        out += stat_measurements(metric, "ms", percentiles=in_ms, labels=base)
    if summary.ttft_mean is not None:
        add("ttft", summary.ttft_mean * 1e3, "ms", stat="mean")
    if summary.tpot_mean is not None:
        add("tpot", summary.tpot_mean * 1e3, "ms", stat="mean")
    add("requests", summary.requests, "count")
    add("failures", summary.failures, "count")
    add("error_rate", 100.0 * summary.error_rate, "%")
    if summary.window_s > 0:
        add("requests_per_s", summary.requests_per_s, "req/s")
        add("output_tokens_per_s", summary.output_tokens_per_s, "tok/s")
        add("inflight", summary.inflight_mean, "count", stat="mean")
    if summary.slo is not None and summary.goodput_ratio is not None:
        slo = {"slo_ttft_ms": f"{summary.slo.ttft_s * 1e3:g}", "slo_tpot_ms": f"{summary.slo.tpot_s * 1e3:g}"}
        add("goodput_ratio", 100.0 * summary.goodput_ratio, "%", **slo)
        if summary.goodput_per_s is not None:
            add("goodput", summary.goodput_per_s, "req/s", **slo)
    return out
