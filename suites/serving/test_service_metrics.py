"""Serving observability: the inference server's Prometheus metrics are discoverable and count what was served
(``ai_service_metrics``), and an autoscaler on a custom inference metric scales the server with load
(``pod_autoscaling``).

The scrape through the Service runs everywhere (the CPU server exposes vLLM's metric names); the Prometheus
comparison needs a ServiceMonitor-driven Prometheus, and the autoscaling test a custom metrics API: both skip
naming what the target lacks.
"""

from __future__ import annotations

import threading

import pytest

from harness.cluster.prometheus import Prometheus, choose_endpoint
from harness.fixture_types import Capabilities, DeployService, HarnessConfig, Target, TestRecord
from harness.measurement import Measurement
from harness.runners.load import LoadDriver, LoadRun, RequestProfile, failure_report, load_shape
from harness.runners.service_metrics import SUCCESS_METRIC, prometheus_count, scrape, total, wait_replicas

pytestmark = [pytest.mark.serving, pytest.mark.observability]

WORKLOAD = "inference-server"
REQUEST = RequestProfile(max_tokens=16, prompt_words=32)
SERVER = {"ttft_ms": "50", "tpot_ms": "10", "output_tokens": "16"}
SCRAPE_WAIT_S = 120.0  # ServiceMonitor pick-up plus two scrape intervals


@pytest.mark.conformance
@pytest.mark.conformance_requirement("ai_service_metrics")
def test_server_metrics_count_the_requests_sent(
    deploy_service: DeployService,
    load: LoadDriver,
    target: Target,
    capabilities: Capabilities,
    namespace: str,
    record: TestRecord,
) -> None:
    """After a bounded load, the server's own /metrics (read through its Service) count exactly the requests
    that succeeded, and the generated tokens the client received."""
    shape = load_shape({"kind": "concurrency", "concurrency": 4, "duration_s": 4, "warmup_s": 0, "max_requests": 400})
    with deploy_service(WORKLOAD, **SERVER) as handle:
        endpoint = handle.endpoints["inference-server"]
        before = scrape(target, endpoint, namespace=namespace, direct=capabilities.embedded)
        run = load.one(endpoint.url(), shape, REQUEST, tag="metrics")
        after = scrape(target, endpoint, namespace=namespace, direct=capabilities.embedded)
    summary = run.summary()
    assert summary.failures == 0, failure_report(summary, run.samples)
    served = (total(after, SUCCESS_METRIC) or 0.0) - (total(before, SUCCESS_METRIC) or 0.0)
    tokens = (total(after, "vllm:generation_tokens_total") or 0.0) - (
        total(before, "vllm:generation_tokens_total") or 0.0
    )
    sent_ok = sum(1 for s in run.samples if s.ok)
    record.add(
        params={"scrape": "through the Service's ClusterIP" if capabilities.embedded else "API server service proxy"},
        measurements=[
            Measurement(metric="server_counted_requests", value=served, unit="count"),
            Measurement(metric="client_counted_requests", value=sent_ok, unit="count"),
        ],
    )
    assert total(after, SUCCESS_METRIC) is not None, f"{SUCCESS_METRIC} is not among the server's metrics"
    assert served == sent_ok, f"the server counted {served:g} successful requests, the client {sent_ok}"
    assert tokens == sum(s.output_tokens for s in run.samples if s.ok)


@pytest.mark.conformance
@pytest.mark.conformance_requirement("ai_service_metrics")
@pytest.mark.requires("servicemonitor", "prometheus")
def test_prometheus_scrapes_the_server_through_a_servicemonitor(
    deploy_service: DeployService,
    load: LoadDriver,
    target: Target,
    capabilities: Capabilities,
    harness_config: HarnessConfig,
    namespace: str,
    record: TestRecord,
) -> None:
    """With a ServiceMonitor, the cluster's Prometheus discovers the server and its request count matches the
    count the load generator sent."""
    shape = load_shape({"kind": "concurrency", "concurrency": 4, "duration_s": 4, "warmup_s": 0, "max_requests": 400})
    prometheus = Prometheus(
        choose_endpoint(harness_config.prometheus_url, capabilities.prometheus) or "", cluster=target
    )
    query = f'sum(vllm:request_success_total{{namespace="{namespace}"}})'
    with deploy_service(WORKLOAD, **SERVER) as handle, deploy_service("inference-metrics"):
        run = load.one(handle.endpoints["inference-server"].url(), shape, REQUEST, tag="prometheus")
        sent_ok = sum(1 for s in run.samples if s.ok)
        seen = prometheus_count(prometheus, query, want=sent_ok, within_s=SCRAPE_WAIT_S)
    record.add(
        params={"query": query, "prometheus": prometheus.describe},
        measurements=[Measurement(metric="prometheus_counted_requests", value=seen, unit="count")],
    )
    assert seen == sent_ok, f"Prometheus reports {seen:g} requests ({query}), the client sent {sent_ok}"


@pytest.mark.conformance
@pytest.mark.conformance_requirement("pod_autoscaling")
@pytest.mark.requires("servicemonitor", "api:custom.metrics.k8s.io")
def test_hpa_on_requests_running_scales_up_and_down(
    deploy_service: DeployService,
    load: LoadDriver,
    target: Target,
    namespace: str,
    harness_config: HarnessConfig,
    record: TestRecord,
) -> None:
    """An HPA on the per-pod requests-running metric (target 4) scales the server from 1 replica up under 32
    concurrent streams, and back to 1 after the load ends."""
    shape = load_shape({"kind": "concurrency", "concurrency": 32, "duration_s": 180, "warmup_s": 1})
    deployment = "inference-server-v1"
    with deploy_service(WORKLOAD, **SERVER) as handle, deploy_service("inference-metrics", hpa_target="4"):
        runs: list[LoadRun] = []
        loader = threading.Thread(
            target=lambda: runs.append(load.one(handle.endpoints["inference-server"].url(), shape, REQUEST, tag="hpa")),
            daemon=True,
        )
        loader.start()
        up = wait_replicas(
            target, namespace, deployment, lambda r: r.wanted > 1,
            timeout_s=harness_config.timeout(shape.duration_s), describe="the HPA to scale the server up under load",
        )  # fmt: skip
        loader.join(timeout=shape.duration_s + 120)
        down = wait_replicas(
            target, namespace, deployment, lambda r: r.wanted == 1,
            timeout_s=harness_config.timeout(300), describe="the HPA to scale the server back down after the load",
        )  # fmt: skip
    record.add(
        measurements=[
            Measurement(metric="replicas", value=up.wanted, unit="count", labels={"phase": "under load"}),
            Measurement(metric="replicas", value=down.wanted, unit="count", labels={"phase": "after load"}),
        ]
    )
    assert runs and runs[0].summary().failures == 0
