"""Long-running workloads: Deployments/StatefulSets behind Services, ready before the test uses them.

``run_service`` is a context manager: it applies the manifests, waits until every workload controller has all its
replicas ready and every Service has a ready endpoint, yields the addresses, and on exit (also on failure)
collects evidence. The namespace's deletion removes the objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.catalog.render import Rendered
from harness.catalog.spec import WorkloadSpec
from harness.cluster.collect import Evidence, gather, write_artifacts
from harness.cluster.manifests import AppliedRef, Applier
from harness.cluster.wait import FailedWait, wait_for
from harness.errors import WaitTimeout, WorkloadFailed
from harness.runners.failures import pod_blocker
from harness.runners.job import apply_workload

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    service: str
    cluster_ip: str
    ports: Mapping[str, int]  # port name ("" when unnamed) -> service port

    def url(self, port: str = "", scheme: str = "http") -> str:
        number = self.ports.get(port) or next(iter(self.ports.values()))
        return f"{scheme}://{self.cluster_ip}:{number}"


@dataclass(slots=True, kw_only=True)
class ServiceHandle:
    workload: str
    namespace: str
    endpoints: dict[str, Endpoint]
    refs: list[AppliedRef]
    evidence: Evidence = field(default_factory=Evidence)


@dataclass(slots=True)
class _State:
    controllers: list[tuple[str, int, int]]  # name, wanted, ready
    endpoints: dict[str, int]  # service -> ready addresses
    pods: list[client.V1Pod]

    def ready(self) -> bool:
        return all(ready >= wanted for _, wanted, ready in self.controllers) and all(
            n > 0 for n in self.endpoints.values()
        )

    def describe(self) -> str:
        parts = [f"{name}: {ready}/{wanted} ready" for name, wanted, ready in self.controllers]
        parts += [f"service {name}: {n} ready endpoint(s)" for name, n in self.endpoints.items()]
        return "; ".join(parts) or "nothing applied"


@contextmanager
def run_service(
    api_client: client.ApiClient,
    spec: WorkloadSpec,
    rendered: Rendered,
    *,
    namespace: str,
    labels: Mapping[str, str],
    timeout_s: float,
    artifacts_dir: Path | None = None,
    applier: Applier | None = None,
) -> Iterator[ServiceHandle]:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    refs = apply_workload(
        api_client, spec, rendered, namespace=namespace, labels=labels, artifacts_dir=artifacts_dir, applier=applier
    )
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    services = [r.name for r in refs if r.kind == "Service"]
    readers = {
        "Deployment": apps.read_namespaced_deployment_status,
        "StatefulSet": apps.read_namespaced_stateful_set_status,
    }
    workloads = [(r.kind, r.name) for r in refs if r.kind in readers]

    def probe() -> _State:
        controllers = []
        for kind, name in workloads:
            obj = readers[kind](name, namespace)
            controllers.append((f"{kind.lower()} {name}", obj.spec.replicas or 0, obj.status.ready_replicas or 0))
        endpoints = {}
        for name in services:
            try:
                ep = core.read_namespaced_endpoints(name, namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                endpoints[name] = 0  # the endpoints controller writes it asynchronously, on every cluster
                continue
            endpoints[name] = sum(len(s.addresses or []) for s in ep.subsets or [])
        return _State(controllers, endpoints, core.list_namespaced_pod(namespace, label_selector=selector).items)

    handle = ServiceHandle(workload=spec.name, namespace=namespace, endpoints={}, refs=refs)
    try:
        try:
            wait_for(
                probe,
                timeout_s=timeout_s,
                describe=f"service workload {spec.name} to be ready",
                done=_State.ready,
                fail_if=lambda s: pod_blocker(s.pods),
                state=_State.describe,
            )
        except (FailedWait, WaitTimeout) as exc:
            evidence = gather(api_client, namespace, label_selector=selector)
            raise WorkloadFailed(f"{exc}. {evidence.explain()}") from None
        for name in services:
            svc = core.read_namespaced_service(name, namespace)
            ports = {p.name or "": p.port for p in svc.spec.ports or []}
            handle.endpoints[name] = Endpoint(service=name, cluster_ip=svc.spec.cluster_ip, ports=ports)
        log.info("service workload %s ready: %s", spec.name, ", ".join(handle.endpoints))
        yield handle
    finally:
        handle.evidence = gather(api_client, namespace, label_selector=selector)
        if artifacts_dir is not None:
            write_artifacts(api_client, namespace, artifacts_dir, handle.evidence)
