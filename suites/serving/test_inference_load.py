"""Serving: an OpenAI-compatible inference server behind a Service, under locust load.

The CPU flavour of ``inference-server`` (a token streamer with a set TTFT/TPOT) runs everywhere, so what is
measured is the serving path -- Service routing, the network, the load generator -- and every figure can be
compared with the latency the server was told to keep. TTFT, TPOT, ITL, requests/s, output tokens/s, error rate
and goodput come from raw per-request samples (definitions: docs/serving-metrics.md); the profile's bars judge
them. On the embedded target locust runs as a local subprocess through the Service's ClusterIP (a loopback
address); elsewhere as an in-cluster Job.

``--serving-url URL`` judges an existing OpenAI-compatible endpoint instead (vLLM, llama.cpp, a gateway): the
latency, Poisson and unknown-model tests load it from this machine after a preflight (reachable, TLS, model from
its ``/v1/models``, ``ignore_eos`` when it takes it), with its own model's bars; the sweep keeps the zero-latency
token streamer, because its point is the serving path's ceiling, not a model's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import pytest

from harness.fixture_types import DeployService, HarnessConfig, Profile, ServiceHandle, TestRecord
from harness.loadgen.endpoint import parse_endpoint, preflight
from harness.measurement import Measurement
from harness.parsers.stream_samples import Slo, stream_measurements
from harness.runners.load import LoadDriver, RequestProfile, failure_report, load_shape, shape_from_text
from harness.thresholds import evaluate
from harness.thresholds.assertions import assert_passed
from harness.thresholds.model import Checks

pytestmark = [pytest.mark.serving]

WORKLOAD = "inference-server"
SERVER = {"ttft_ms": "100", "tpot_ms": "20", "output_tokens": "32"}
REQUEST = RequestProfile(max_tokens=32, prompt_words=128)
# The goodput SLO: MLPerf Inference's interactive pair for Llama-3.1-8B, TTFT p99 500 ms with TPOT p99 30 ms
# (mlcommons/inference loadgen/mlperf.conf; ../shared/research/mission-anchors.md).
INTERACTIVE_SLO = Slo(ttft_s=0.5, tpot_s=0.03, source="MLPerf Inference interactive, Llama-3.1-8B (mlperf.conf)")
MODEL = "aibench-tokenstream"
DEFAULT_LOAD = "concurrency=16,duration_s=8,warmup_s=1,max_requests=5000"  # --serving-load overrides it
QUEUE_P99_MAX_S = 0.05  # half the streamer's TTFT: a generator later than that distorts the offered load


def _checks(profile: Profile, measurements: list[Measurement], model: str = MODEL) -> Checks:
    """The profile's inference-server bars that apply here: a bar naming a model (the MLPerf pairs for
    llama-3.1-8b on GPU profiles) judges that model only (scope ``model``); the mesh-overhead bar, selected by
    ``of``, belongs to the routing test, which measures it (scope ``of`` matches no bar's value here). The
    :class:`Checks` go to ``assert_passed`` as they are: they say why nothing was judged, or that nothing was
    measured."""
    return evaluate(profile, WORKLOAD, measurements, scope={"model": model, "of": "-"})


def _url(handle: ServiceHandle) -> str:
    return handle.endpoints["inference-server"].url("http")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What a test loads: its URL, the request settings it takes, the model label its bars select, and where the
    load runs from."""

    url: str
    request: RequestProfile
    model: str
    description: str
    external: bool


@contextmanager
def _endpoint(
    deploy_service: DeployService, harness_config: HarnessConfig, request: RequestProfile
) -> Iterator[Endpoint]:
    """The token streamer deployed for this test, or the --serving-url endpoint (preflighted once: a refused or
    unreachable endpoint fails the test at once with the preflight's line, not after the run)."""
    if harness_config.serving_url:
        endpoint = parse_endpoint(harness_config.serving_url, insecure=harness_config.serving_insecure)
        checked = preflight(endpoint, api=request.api)
        yield Endpoint(
            url=endpoint.url,
            request=replace(
                request, model=checked.model, extra_body=dict(checked.extra_body), verify_tls=endpoint.verify_tls
            ),
            model=checked.model.rsplit("/", 1)[-1].lower(),
            description=f"{endpoint.url} (--serving-url), model {checked.model}",
            external=True,
        )
        return
    with deploy_service(WORKLOAD, **SERVER) as handle:
        yield Endpoint(
            url=_url(handle),
            request=replace(request, model=MODEL, extra_body={"ignore_eos": True}),
            model=MODEL,
            description="token streamer TTFT 100 ms, TPOT 20 ms, 32 tokens",
            external=False,
        )


def _driver(load: LoadDriver, endpoint: Endpoint) -> LoadDriver:
    """An external endpoint is loaded from this machine (the user named a URL it reaches)."""
    return replace(load, local=True) if endpoint.external else load


@pytest.mark.perf
@pytest.mark.parametrize("api", ["completions", "chat"])
def test_streaming_latency_and_goodput(
    deploy_service: DeployService,
    load: LoadDriver,
    record: TestRecord,
    profile: Profile,
    harness_config: HarnessConfig,
    api: str,
) -> None:
    """16 concurrent streams (or the --serving-load shape) through the Service for 8 s: TTFT/TPOT percentiles,
    throughput, error rate and goodput against the MLPerf interactive pair clear the profile's bars, with the
    asked number of requests really in flight."""
    shape = shape_from_text(harness_config.serving_load or DEFAULT_LOAD)
    request = RequestProfile(api=api, max_tokens=REQUEST.max_tokens, prompt_words=REQUEST.prompt_words)
    with _endpoint(deploy_service, harness_config, request) as endpoint:
        run = _driver(load, endpoint).one(endpoint.url, shape, endpoint.request, tag=api)
    summary = run.summary(INTERACTIVE_SLO)
    record.add(
        params={
            "load": f"{shape.describe()}, {shape.duration_s:g} s after a {shape.warmup_s:g} s warm-up, {run.where}",
            "api": request.path,
            "server": endpoint.description,
            "goodput_slo": f"TTFT <= 500 ms and TPOT <= 30 ms ({INTERACTIVE_SLO.source})",
        }
    )
    load_label = {"rate": f"{shape.rate:g}"} if shape.kind == "rate" else {"concurrency": str(shape.concurrency)}
    labels = {"api": api, **load_label, "model": endpoint.model}
    measurements = stream_measurements(summary, labels)
    checks = _checks(profile, measurements, endpoint.model)
    record.add(measurements=measurements, checks=checks)
    assert summary.failures == 0, failure_report(summary, run.samples)
    # closed loop: the asked concurrency was on the wire (Little's law), not queued inside the client
    assert shape.kind == "rate" or summary.inflight_mean == pytest.approx(shape.concurrency, rel=0.1), (
        f"{summary.inflight_mean:.1f} requests in flight on average, {shape.concurrency} asked: the load generator "
        "could not keep up"
    )
    assert_passed(checks)


@pytest.mark.perf
def test_poisson_arrivals_at_fixed_rate(
    deploy_service: DeployService, load: LoadDriver, record: TestRecord, profile: Profile, harness_config: HarnessConfig
) -> None:
    """Open loop at 20 requests/s (Poisson arrivals) for 8 s: the request count is what a Poisson process of that
    rate gives (within 4 standard deviations), client-side waiting stays under 50 ms at the p99, and the latency
    bars hold."""
    shape = load_shape({"kind": "rate", "rate": 20, "duration_s": 8, "warmup_s": 1, "max_inflight": 64, "seed": 7})
    with _endpoint(deploy_service, harness_config, REQUEST) as endpoint:
        run = _driver(load, endpoint).one(endpoint.url, shape, endpoint.request, tag="rate")
    summary = run.summary(INTERACTIVE_SLO)
    record.add(
        params={"load": f"{shape.describe()}, {shape.duration_s:g} s, {run.where}", "server": endpoint.description}
    )
    labels = {"api": "completions", "rate": f"{shape.rate:g}", "model": endpoint.model}
    measurements = stream_measurements(summary, labels)
    checks = _checks(profile, measurements, endpoint.model)
    record.add(measurements=measurements, checks=checks)
    assert summary.failures == 0, failure_report(summary, run.samples)
    expected = shape.rate * shape.duration_s
    # the warm-up's arrivals are excluded from the summary; the measured window holds duration_s of them
    sent = summary.requests
    assert abs(sent - expected) <= 4 * math.sqrt(expected), (
        f"{sent} requests sent in {shape.duration_s:g} s at {shape.rate:g}/s (Poisson mean {expected:g}, sd "
        f"{math.sqrt(expected):.1f}): the arrival process did not keep its rate"
    )
    # below its in-flight cap nothing waits for a slot; what remains is the generator waking late for an arrival
    # (milliseconds on a busy machine), measured as queue_delay and kept out of TTFT
    assert summary.queue[99] < QUEUE_P99_MAX_S, (
        f"requests waited {summary.queue[99] * 1e3:.1f} ms client-side at the p99 (bound "
        f"{QUEUE_P99_MAX_S * 1e3:g} ms): the load generator could not keep the arrival times"
    )
    assert_passed(checks)


@pytest.mark.perf
def test_saturation_sweep(deploy_service: DeployService, load: LoadDriver, record: TestRecord) -> None:
    """Concurrency 1, 4, 16 against a zero-latency streamer through the Service until throughput stops growing:
    the serving path's maximum requests/s (32-token streams) is measured, and no request fails on the way."""
    shape = load_shape({"kind": "sweep", "levels": [1, 4, 16], "duration_s": 4, "warmup_s": 1})
    with deploy_service(WORKLOAD, ttft_ms="0", tpot_ms="0", output_tokens="32") as handle:
        runs = load.sweep(_url(handle), shape, REQUEST)
    measurements: list[Measurement] = []
    best = 0.0
    for run in runs:
        summary = run.summary()
        assert summary.failures == 0, failure_report(summary, run.samples)
        labels = {"api": "completions", "concurrency": str(run.shape.concurrency), "server": "zero-latency"}
        measurements += stream_measurements(summary, labels)
        best = max(best, summary.requests_per_s)
    measurements.append(
        Measurement(metric="max_requests_per_s", value=best, unit="req/s", labels={"server": "zero-latency"})
    )
    record.add(
        params={"load": f"{shape.describe()}, {shape.duration_s:g} s per level, {runs[0].where}"},
        measurements=measurements,
    )
    assert best > 0


@pytest.mark.conformance
def test_unknown_model_is_refused_with_an_error_body(
    deploy_service: DeployService, load: LoadDriver, record: TestRecord, harness_config: HarnessConfig
) -> None:
    """A request for a model the server does not serve fails with HTTP 404 and an OpenAI error body naming the
    model, on every request (no silent fallback to another model)."""
    shape = load_shape({"kind": "concurrency", "concurrency": 2, "duration_s": 2, "warmup_s": 0, "max_requests": 10})
    with _endpoint(deploy_service, harness_config, RequestProfile(max_tokens=8)) as endpoint:
        wrong = replace(endpoint.request, model="no-such-model")
        run = _driver(load, endpoint).one(endpoint.url, shape, wrong, tag="bad-model")
    statuses = {s.status for s in run.samples}
    record.add(params={"model asked": wrong.model, "statuses": ",".join(map(str, sorted(statuses)))})
    assert statuses == {404}, f"expected HTTP 404 for every request, got {sorted(statuses)}"
    assert all("no-such-model" in s.body and "does not exist" in s.body for s in run.samples), run.samples[0].body


@pytest.mark.perf
@pytest.mark.gpu
def test_vllm_streaming_latency_and_goodput(
    deploy_service: DeployService, load: LoadDriver, record: TestRecord, profile: Profile
) -> None:
    """The GPU flavour: vLLM with a small model behind the same Service, 8 concurrent streams for 30 s: TTFT/TPOT
    percentiles, error rate and goodput against the MLPerf interactive pair (bars naming another model do not
    apply to this one)."""
    shape = load_shape({"kind": "concurrency", "concurrency": 8, "duration_s": 30, "warmup_s": 5})
    served = "aibench-model"
    request = RequestProfile(
        model=served, max_tokens=128, prompt_words=256, timeout_s=120, extra_body={"ignore_eos": True}
    )
    with deploy_service("inference-server-vllm", served_model_name=served) as handle:
        run = load.one(_url(handle), shape, request, tag="vllm")
    summary = run.summary(INTERACTIVE_SLO)
    model = str(record.params.get("model", "")).rsplit("/", 1)[-1].lower()
    record.add(params={"load": f"{shape.describe()}, {shape.duration_s:g} s, {run.where}", "served_as": served})
    measurements = stream_measurements(summary, {"api": "completions", "concurrency": "8", "model": model})
    checks = _checks(profile, measurements, model)
    record.add(measurements=measurements, checks=checks)
    assert summary.failures == 0, failure_report(summary, run.samples)
    assert_passed(checks)
