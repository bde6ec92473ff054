"""The Prometheus client: answers, errors with one reason each, and the API server's service proxy."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client

from harness.cluster.prometheus import MetricsUnavailable, Prometheus, ScrapeTarget, choose_endpoint
from harness.cluster.target import Connection
from harness.observability.gpu_metrics import coverage, coverage_problems
from harness.observability.scrape import job_problems, node_coverage_problems

VECTOR = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [{"metric": {"__name__": "up", "job": "node-exporter", "instance": "n1:9100"}, "value": [1, "1"]}],
    },
}
TARGETS = {
    "status": "success",
    "data": {
        "activeTargets": [
            {
                "labels": {"job": "node-exporter", "instance": "n1:9100"},
                "health": "up",
                "lastError": "",
                "scrapeUrl": "u",
            },
            {
                "labels": {"job": "node-exporter", "instance": "n2:9100"},
                "health": "down",
                "lastError": "connection refused",
                "scrapeUrl": "u2",
            },
        ]
    },
}


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers like Prometheus' HTTP API: the query text picks the answer."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query).get("query", [""])[0]
        if url.path == "/-/ready":
            self._send(200, b"Prometheus Server is Ready.\n", "text/plain")
        elif url.path == "/api/v1/targets":
            self._send(200, json.dumps(TARGETS).encode())
        elif query == "bad(":
            body = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unclosed left parenthesis"}
            self._send(400, json.dumps(body).encode())
        elif query == "overloaded":
            self._send(503, b"Service Unavailable: too many queries\n", "text/plain")
        elif query == "scalar(1)":
            self._send(
                200, json.dumps({"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}}).encode()
            )
        elif query == "absent_metric":
            self._send(200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode())
        else:
            self._send(200, json.dumps(VECTOR).encode())

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_query_vector_scalar_and_empty(fake_url: str) -> None:
    prom = Prometheus(fake_url)
    result = prom.query("up")
    assert [(s.name, s.labels["job"], s.value) for s in result.series] == [("up", "node-exporter", 1.0)]
    assert result.elapsed_s > 0
    assert prom.query("scalar(1)").series[0].value == 1.0
    assert prom.query("absent_metric").series == ()
    assert prom.ready() > 0


def test_errors_are_one_reason_each(fake_url: str) -> None:
    prom = Prometheus(fake_url)
    with pytest.raises(MetricsUnavailable, match=r"rejected query 'bad\(': bad_data: 1:5: parse error"):
        prom.query("bad(")
    with pytest.raises(MetricsUnavailable, match=r"answered HTTP 503 to query 'overloaded': Service Unavailable"):
        prom.query("overloaded")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(MetricsUnavailable, match=rf"Prometheus at http://127.0.0.1:{closed} is unreachable"):
        Prometheus(f"http://127.0.0.1:{closed}").query("up")


def test_query_with_data_returns_the_empty_answer_after_waiting(fake_url: str) -> None:
    result = Prometheus(fake_url).query_with_data("absent_metric", within_s=0.3)
    assert result.series == ()


def test_targets_and_job_problems(fake_url: str) -> None:
    targets = Prometheus(fake_url).targets()
    assert [(t.job, t.health) for t in targets] == [("node-exporter", "up"), ("node-exporter", "down")]
    assert job_problems(targets, job_pattern="node-exporter", what="node-exporter") == [
        "node-exporter target n2:9100 (job node-exporter) is down: connection refused"
    ]
    assert job_problems(targets, job_pattern=".*kube-state-metrics.*", what="kube-state-metrics") == [
        "Prometheus has no kube-state-metrics scrape target (jobs: node-exporter)"
    ]
    up = [ScrapeTarget(job="node-exporter", instance="n1", health="up", last_error="", scrape_url="")]
    assert job_problems(up, job_pattern="node-exporter", what="node-exporter") == []


def test_node_coverage(fake_url: str) -> None:
    prom = Prometheus(fake_url)
    assert node_coverage_problems(prom.query("up"), ["n1"]) == []
    assert node_coverage_problems(prom.query("up"), ["n1", "n3"]) == [
        "query 'up' names no series for node(s) n3 (it names n1)"
    ]
    assert node_coverage_problems(prom.query("absent_metric"), ["n1"]) == ["query 'absent_metric' returned no series"]


def test_endpoint_choice() -> None:
    assert choose_endpoint("http://p:9090", ["monitoring/prometheus-k8s:9090"]) == "http://p:9090"
    assert choose_endpoint(None, ["monitoring/prometheus-k8s:9090"]) == "monitoring/prometheus-k8s:9090"
    assert choose_endpoint(None, []) is None


# ----------------------------------------------------------------------------- through the embedded target
def test_service_proxy_errors_are_kube_statuses(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(MetricsUnavailable, match="HTTP 404"):
        Prometheus(f"{ns}/nothing:9090", cluster=Connection(api)).query("up")
    core.create_namespaced_service(
        ns, {"metadata": {"name": "lonely"}, "spec": {"selector": {"app": "none"}, "ports": [{"port": 9090}]}}
    )
    with pytest.raises(MetricsUnavailable, match="no endpoints available for service"):
        Prometheus(f"{ns}/lonely:9090", cluster=Connection(api)).query("up")


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed")
def test_embedded_prometheus_scrapes_node_exporter_through_the_proxy(api: client.ApiClient) -> None:
    prom = Prometheus("kube-system/prometheus:9090", cluster=Connection(api))
    assert prom.ready() < 5
    up = prom.query_with_data('up{job="node-exporter"}', within_s=30)
    assert [s.value for s in up.series] == [1.0]
    assert job_problems(prom.targets(), job_pattern="node-exporter", what="node-exporter") == []


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed")
def test_annotated_exporter_is_discovered_and_its_gpu_series_checked(api: client.ApiClient, ns: str) -> None:
    """A scripted dcgm-exporter (real exposition text served by a pod) behind a Service annotated
    prometheus.io/scrape: the embedded target lists it for Prometheus, Prometheus scrapes it, and the GPU-metrics
    rules run on what Prometheus returns."""
    exposition = "".join(
        f'{metric}{{gpu="{g}",UUID="GPU-{g}",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-a-0"}} {value}\n'
        for metric, value in (
            ("DCGM_FI_DEV_GPU_UTIL", 97),
            ("DCGM_FI_DEV_FB_USED", 1024),
            ("DCGM_FI_DEV_POWER_USAGE", 650.5),
            ("DCGM_FI_DEV_GPU_TEMP", 61),
            ("DCGM_FI_DEV_XID_ERRORS", 0),
        )
        for g in range(2)
    )
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "exposition"}, "data": {"metrics": exposition}})
    labels = {"app": "dcgm-exporter"}
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "exporter", "labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "exporter",
                        "image": "python:3.11-slim",
                        "command": ["python", "-m", "http.server", "9400", "--bind", "$(POD_IP)", "-d", "/srv"],
                        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                        "ports": [{"containerPort": 9400, "name": "metrics"}],
                        "readinessProbe": {"tcpSocket": {"port": 9400}, "periodSeconds": 1},
                        "volumeMounts": [{"name": "exposition", "mountPath": "/srv"}],
                    }
                ],
                "volumes": [{"name": "exposition", "configMap": {"name": "exposition"}}],
            },
        },
    )
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "dcgm-exporter", "annotations": {"prometheus.io/scrape": "true"}},
            "spec": {"selector": labels, "ports": [{"name": "metrics", "port": 9400, "targetPort": "metrics"}]},
        },
    )
    prom = Prometheus("kube-system/prometheus:9090", cluster=Connection(api))
    result = prom.query_with_data(f'{{__name__=~"DCGM_FI_DEV_.*", namespace="{ns}"}}', within_s=60)
    assert {s.labels["job"] for s in result.series} == {"dcgm-exporter"}
    assert {s.labels["pod"] for s in result.series} == {"exporter"}
    nodes = coverage(result.series, {"gpu-a-0": 2, "gpu-a-1": 2})
    assert coverage_problems(nodes) == ["node gpu-a-1: no DCGM metrics at all (is dcgm-exporter scheduled on it?)"]
