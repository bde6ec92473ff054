"""What a serving workload says about itself: its Prometheus /metrics read through the Service, and the replica
count of a Deployment an autoscaler drives.

Why through the Service and not a pod: the check is that the server's metrics are discoverable the way a scraper
finds them. On the embedded target the ClusterIP is a loopback address the harness reaches directly; elsewhere
the API server's service proxy carries the GET (nothing but the kubeconfig needed). The HTTP and proxy handling
is :class:`harness.cluster.prometheus.ServiceHttp`'s, reused; the text is read by
:mod:`harness.parsers.exposition`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client

from harness.cluster.prometheus import Prometheus, Series, ServiceHttp
from harness.cluster.target import ClusterHandle
from harness.cluster.wait import wait_for
from harness.errors import WaitTimeout
from harness.parsers.exposition import parse_exposition
from harness.runners.service import Endpoint

SUCCESS_METRIC = "vllm:request_success_total"


def scrape(cluster: ClusterHandle, endpoint: Endpoint, *, namespace: str, direct: bool) -> list[Series]:
    """Every series the Service's ``/metrics`` returns (``direct``: GET the ClusterIP from here)."""
    port = next(iter(endpoint.ports.values()))
    where = endpoint.url() if direct else f"{namespace}/{endpoint.service}:{port}"
    service = ServiceHttp(where, cluster=None if direct else cluster, what=f"service {endpoint.service}")
    return parse_exposition(service.text("/metrics"))


def total(series: list[Series], name: str, **labels: str) -> float | None:
    """Sum of the series named ``name`` whose labels include ``labels``; None when there is no such series."""
    values = [s.value for s in series if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(values) if values else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Replicas:
    wanted: int
    ready: int

    def __str__(self) -> str:
        return f"{self.ready}/{self.wanted} replicas ready"


def wait_replicas(
    cluster: ClusterHandle,
    namespace: str,
    deployment: str,
    done: Callable[[Replicas], bool],
    *,
    timeout_s: float,
    describe: str,
) -> Replicas:
    """Poll the Deployment's scale until ``done``; WaitTimeout names the last count seen."""
    apps = client.AppsV1Api(cluster.api_client)

    def probe() -> Replicas:
        status = apps.read_namespaced_deployment_status(deployment, namespace)
        wanted = status.spec.replicas if status.spec else None
        ready = status.status.ready_replicas if status.status else None
        return Replicas(wanted=wanted or 0, ready=ready or 0)

    return wait_for(probe, timeout_s=timeout_s, describe=describe, done=done, state=str)


def prometheus_count(prometheus: Prometheus, promql: str, *, want: float, within_s: float) -> float:
    """The value of a one-series ``promql`` once it reaches ``want`` (scrapes lag the load), else the last value
    seen when ``within_s`` ran out (0 when Prometheus never had the series): the caller compares and reports."""

    def value() -> float:
        result = prometheus.query(promql)
        return result.series[0].value if result.series else 0.0

    try:
        return wait_for(value, timeout_s=within_s, describe=f"{promql} to reach {want:g}", done=lambda v: v >= want)
    except WaitTimeout:
        return value()
