"""Routing of inference traffic between model versions: Istio (weighted split, header match, timeout, retries,
fault injection, mTLS STRICT, the mesh's latency overhead) and the Gateway API (HTTPRoute split and header
match, Inference Extension pools), always with real traffic from the load generator, never config-only.

Two versions of the CPU inference server (v1, v2) answer with their version in ``x-aibench-version``; each raw
sample records it. A weighted split is judged by the ``split-within-binomial`` verdict rule (the exact binomial
acceptance interval of :mod:`harness.statistics`): a correct router fails it with probability <= 1e-3. Each test skips
naming the API group the target does not serve.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from harness.fixture_types import DeployService, Profile, Target, TestRecord
from harness.measurement import Measurement
from harness.parsers.stream_samples import stream_measurements
from harness.runners.gateways import GatewayRef, programmed_gateway
from harness.runners.load import LoadDriver, LoadRun, LoadShape, RequestProfile, failure_report, load_shape
from harness.runners.service import Endpoint
from harness.statistics import requests_for, split_measurements
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate_thresholds
from harness.thresholds.model import RuleKind
from harness.thresholds.verdicts import judge

pytestmark = [pytest.mark.serving]

SERVER = "inference-server"
FAST = {"ttft_ms": "20", "tpot_ms": "5", "output_tokens": "8"}
REQUEST = RequestProfile(max_tokens=8, prompt_words=16)
HEADER = "x-model-version"
SPLIT = {"v1": 80.0, "v2": 20.0}
# requests for the 20 % share to be judged within +-5 points at alpha = 1e-3 (693)
SPLIT_REQUESTS = requests_for(SPLIT["v2"] / 100, 0.05)


def _shape(requests: int, concurrency: int = 8) -> LoadShape:
    return load_shape(
        {"kind": "concurrency", "concurrency": concurrency, "duration_s": 120, "warmup_s": 0, "max_requests": requests}
    )


def _versions(run: LoadRun) -> Counter[str]:
    return Counter(s.version for s in run.samples if s.ok)


def _judge_split(
    record: TestRecord, profile: Profile, workload: str, counts: Counter[str], weights: dict[str, float], **labels: str
) -> None:
    evidence = split_measurements(counts, weights, **labels)
    verdicts = judge(profile, workload, RuleKind.WEIGHTED_SPLIT, evidence)
    record.add(
        params={**labels, "observed": ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))},
        measurements=evidence,
        checks=verdicts,
    )
    assert_passed(verdicts)


@pytest.fixture
def two_versions(deploy_service: DeployService) -> Iterator[Endpoint]:
    """inference-server v1 and v2 behind one Service, with Istio's sidecar (ignored where Istio is absent)."""
    with ExitStack() as stack:
        handles = [stack.enter_context(deploy_service(SERVER, version=v, mesh="true", **FAST)) for v in ("v1", "v2")]
        yield handles[0].endpoints[SERVER]


# ----------------------------------------------------------------------------- Istio
@pytest.mark.conformance
@pytest.mark.conformance_requirement("ai_inference")
@pytest.mark.requires("istio")
def test_istio_weighted_split(
    two_versions: Endpoint, deploy_service: DeployService, load: LoadDriver, profile: Profile, record: TestRecord
) -> None:
    """An 80/20 VirtualService split between the v1 and v2 subsets is what the clients observe (binomial)."""
    with deploy_service("inference-route-istio", weight_v1="80", weight_v2="20"):
        run = load.one(two_versions.url(), _shape(SPLIT_REQUESTS), REQUEST, tag="istio-split", mesh=True)
    summary = run.summary()
    assert summary.failures == 0, failure_report(summary, run.samples)
    _judge_split(record, profile, "inference-route-istio", _versions(run), SPLIT, routing="istio VirtualService 80/20")


@pytest.mark.conformance
@pytest.mark.conformance_requirement("ai_inference")
@pytest.mark.requires("istio")
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_istio_header_routing(
    two_versions: Endpoint, deploy_service: DeployService, load: LoadDriver, record: TestRecord, version: str
) -> None:
    """Every request carrying the model-version header lands on that subset (100 % correct)."""
    request = RequestProfile(max_tokens=8, prompt_words=16, headers={HEADER: version})
    with deploy_service("inference-route-istio", header=HEADER):
        run = load.one(two_versions.url(), _shape(300), request, tag=f"istio-header-{version}", mesh=True)
    summary = run.summary()
    assert summary.failures == 0, failure_report(summary, run.samples)
    counts = _versions(run)
    record.add(params={"header": f"{HEADER}: {version}", "observed": dict(counts)})
    assert counts == Counter({version: summary.requests}), f"header {HEADER}={version} routed to {dict(counts)}"


@pytest.mark.conformance
@pytest.mark.conformance_requirement("ai_inference")
@pytest.mark.requires("istio")
def test_istio_fault_abort_rate(
    two_versions: Endpoint, deploy_service: DeployService, load: LoadDriver, profile: Profile, record: TestRecord
) -> None:
    """A 20 % abort fault is seen by the clients as HTTP 503 at that rate (binomial), and only those fail."""
    with deploy_service("inference-route-istio", abort_percent="20", abort_status="503"):
        run = load.one(two_versions.url(), _shape(SPLIT_REQUESTS), REQUEST, tag="istio-abort", mesh=True)
    statuses = Counter(s.status for s in run.samples)
    record.add(params={"fault": "abort 20 % with 503", "statuses": dict(statuses)})
    assert set(statuses) <= {200, 503}, f"unexpected statuses {dict(statuses)}"
    outcomes = Counter({"aborted": statuses[503], "served": statuses[200]})
    _judge_split(record, profile, "inference-route-istio", outcomes, {"aborted": 20, "served": 80}, fault="abort")


@pytest.mark.conformance
@pytest.mark.conformance_requirement("ai_inference")
@pytest.mark.requires("istio")
def test_istio_timeout_and_retries(deploy_service: DeployService, load: LoadDriver, record: TestRecord) -> None:
    """The route's timeout ends a request the server answers too late (504 at ~the timeout), and its retry
    policy hides a server that refuses 30 % of requests (clients see ~0.3^3 = 2.7 %, the server every try)."""
    slow = {"ttft_ms": "3000", "tpot_ms": "5", "output_tokens": "8"}
    with ExitStack() as stack:
        stack.enter_context(deploy_service(SERVER, version="v1", mesh="true", **slow))
        handle = stack.enter_context(deploy_service(SERVER, version="v2", mesh="true", error_percent="30", **FAST))
        stack.enter_context(deploy_service("inference-route-istio", timeout="1s", per_try_timeout="1s"))
        url = handle.endpoints[SERVER].url()
        late = load.one(url, _shape(20, 2), RequestProfile(headers={HEADER: "v1"}), tag="timeout", mesh=True)
        retried = load.one(url, _shape(300), RequestProfile(headers={}), tag="retries", mesh=True)
    assert {s.status for s in late.samples} == {504}, Counter(s.status for s in late.samples)
    assert all(0.9 <= s.e2e <= 2.0 for s in late.samples), [round(s.e2e, 2) for s in late.samples]
    # weighted route (v1 80 % is too slow: it times out too); judge only the v2 answers' refusals
    failed = sum(1 for s in retried.samples if s.status == 503)
    record.add(params={"timeout": "1s", "retries": "2 on 5xx"}, measurements=[
        Measurement(metric="client_503", value=failed, unit="count"),
    ])  # fmt: skip
    v2 = sum(1 for s in retried.samples if s.version == "v2" or s.status == 503)
    assert v2 and failed / v2 < 0.3 / 2, f"{failed} of {v2} v2 requests failed: retries did not hide 30 % refusals"


@pytest.mark.conformance
@pytest.mark.conformance_requirement("ai_inference")
@pytest.mark.requires("istio")
def test_istio_mtls_strict_refuses_plaintext(
    two_versions: Endpoint, deploy_service: DeployService, load: LoadDriver, record: TestRecord
) -> None:
    """With PeerAuthentication STRICT, a client outside the mesh (no sidecar, plaintext) is refused."""
    with deploy_service("inference-route-istio"):
        run = load.one(two_versions.url(), _shape(20, 2), REQUEST, tag="plaintext", mesh=False)
    ok = [s for s in run.samples if s.ok]
    record.add(params={"client": "no sidecar (plaintext)", "answered": len(ok), "sent": len(run.samples)})
    assert not ok, f"{len(ok)} of {len(run.samples)} plaintext requests were answered despite mTLS STRICT"


@pytest.mark.perf
@pytest.mark.requires("istio")
def test_mesh_latency_overhead(
    deploy_service: DeployService, load: LoadDriver, record: TestRecord, profile: Profile
) -> None:
    """TTFT and end-to-end p50/p99 through two sidecars minus the same without the mesh, at 8 streams."""
    shape = load_shape({"kind": "concurrency", "concurrency": 8, "duration_s": 20, "warmup_s": 2})
    with ExitStack() as stack:
        direct = stack.enter_context(deploy_service(SERVER, service="inference-direct", mesh="false", **FAST))
        meshed = stack.enter_context(deploy_service(SERVER, mesh="true", **FAST))
        base = load.one(direct.endpoints["inference-direct"].url(), shape, REQUEST, tag="direct", mesh=False)
        mesh = load.one(meshed.endpoints[SERVER].url(), shape, REQUEST, tag="mesh", mesh=True)
    a, b = base.summary(), mesh.summary()
    assert a.failures == 0 and b.failures == 0, failure_report(b, mesh.samples)
    measurements = [
        *stream_measurements(a, {"path": "direct"}),
        *stream_measurements(b, {"path": "mesh"}),
        *[
            Measurement(metric="mesh_overhead", value=(b.e2e[q] - a.e2e[q]) * 1e3, unit="ms",
                        labels={"stat": "percentile", "percentile": f"{q:g}", "of": "e2e_latency"})
            for q in (50, 99)
        ],
        *[
            Measurement(metric="mesh_overhead", value=(b.ttft[q] - a.ttft[q]) * 1e3, unit="ms",
                        labels={"stat": "percentile", "percentile": f"{q:g}", "of": "ttft"})
            for q in (50, 99)
        ],
    ]  # fmt: skip
    bars = [t for t in profile.thresholds_for("inference-server") if t.metric == "mesh_overhead"]
    checks = evaluate_thresholds(bars, measurements)
    record.add(measurements=measurements, checks=checks)
    assert_passed(checks)


# ----------------------------------------------------------------------------- Gateway API
@pytest.fixture
def gateway(target: Target) -> GatewayRef:
    ref, why = programmed_gateway(target.api_client)
    if ref is None:
        pytest.skip(f"requires a programmed Gateway: {why}")
    return ref


@pytest.mark.conformance
@pytest.mark.conformance_requirement("ai_inference")
@pytest.mark.requires("gateway-api")
def test_gateway_weighted_split_and_header_match(
    gateway: GatewayRef, deploy_service: DeployService, load: LoadDriver, profile: Profile, record: TestRecord
) -> None:
    """An HTTPRoute's 80/20 backendRef weights are what clients observe (binomial), and the model-version header
    selects its version on every request."""
    host = "inference.aibench.example"
    with ExitStack() as stack:
        for version in ("v1", "v2"):
            stack.enter_context(deploy_service(SERVER, version=version, **FAST))
        stack.enter_context(
            deploy_service("inference-route-gateway", gateway=gateway.name, gateway_namespace=gateway.namespace,
                           hostname=host)
        )  # fmt: skip
        split = load.one(gateway.url(), _shape(SPLIT_REQUESTS), RequestProfile(headers={"Host": host}), tag="gw")
        pinned = load.one(
            gateway.url(), _shape(300), RequestProfile(headers={"Host": host, HEADER: "v2"}), tag="gw-header"
        )
    summary = split.summary()
    assert summary.failures == 0, failure_report(summary, split.samples)
    where = f"HTTPRoute on {gateway.namespace}/{gateway.name}"
    _judge_split(record, profile, "inference-route-gateway", _versions(split), SPLIT, routing=where)
    assert _versions(pinned) == Counter({"v2": len(pinned.samples)}), dict(_versions(pinned))


@pytest.mark.conformance
@pytest.mark.conformance_requirement("ai_inference")
@pytest.mark.requires("inference-extension", "gateway-api")
def test_inference_pool_serves_the_model(
    gateway: GatewayRef, deploy_service: DeployService, load: LoadDriver, record: TestRecord
) -> None:
    """Requests for the InferenceModel's model name reach the InferencePool's pods through the Gateway."""
    host = "inference.aibench.example"
    with ExitStack() as stack:
        stack.enter_context(deploy_service(SERVER, **FAST))
        stack.enter_context(
            deploy_service("inference-pool", gateway=gateway.name, gateway_namespace=gateway.namespace, hostname=host)
        )
        run = load.one(gateway.url(), _shape(100, 4), RequestProfile(headers={"Host": host}), tag="pool")
    summary = run.summary()
    record.add(params={"via": f"InferencePool on {gateway.namespace}/{gateway.name}"})
    assert summary.failures == 0, failure_report(summary, run.samples)
