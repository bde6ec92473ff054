"""The service runner: ready replicas behind a working ClusterIP, or a failure that says why."""

from __future__ import annotations

import ipaddress
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client
from workload_runs import run_context

from harness.catalog.render import render
from harness.catalog.spec import load_spec
from harness.cluster.namespaces import run_labels
from harness.embedded.network import SERVICE_NETWORK
from harness.errors import WorkloadFailed
from harness.podnet.ranges import SERVICE_RANGE
from harness.runners.job import scripts_configmap_name
from harness.runners.service import run_service

SPEC = Path(__file__).resolve().parents[1] / "data" / "workloads" / "http-echo" / "workload.yaml"


def _service(api: client.ApiClient, ns: str, **params: str):
    spec = load_spec(SPEC)
    rendered = render(spec, params, context={"scripts_configmap": scripts_configmap_name(spec.name)})
    return run_service(spec, rendered, run_context(api, ns, run_labels("run-s", "svc-test"), timeout_s=30))


def test_service_is_ready_and_balanced(api: client.ApiClient, ns: str) -> None:
    with _service(api, ns) as handle:
        endpoint = handle.endpoints["http-echo"]
        cluster_ip = ipaddress.ip_address(endpoint.cluster_ip)
        assert endpoint.ports == {"http": 80} and (cluster_ip in SERVICE_NETWORK or cluster_ip in SERVICE_RANGE)
        names = {urllib.request.urlopen(endpoint.url("http"), timeout=5).read().decode() for _ in range(6)}
    assert len(names) == 2 and all(n.startswith("http-echo-") for n in names)
    assert len(handle.evidence.pods) == 2


def test_pods_that_cannot_start_fail_fast(api: client.ApiClient, ns: str) -> None:
    with pytest.raises(WorkloadFailed) as exc, _service(api, ns, replicas="1", command="no-such-python"):
        pass
    message = str(exc.value)
    assert "ContainerCannotRun" in message and "no-such-python" in message, message
