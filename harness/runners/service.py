"""Long-running workloads: Deployments/StatefulSets behind Services, ready before the test uses them.

``run_service`` is a context manager: it applies the manifests, waits until every workload controller has all its
replicas ready and every Service has a ready endpoint, yields the addresses, and on exit (also on failure)
collects evidence. The namespace's deletion removes the objects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.catalog.render import Rendered
from harness.catalog.spec import WorkloadSpec
from harness.cluster.collect import Evidence, gather
from harness.cluster.manifests import AppliedRef
from harness.errors import WorkloadFailed
from harness.runners.failures import pod_blocker
from harness.runners.skeleton import Launch, RunContext, await_watch, collect, launch

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


class _ServiceWatch:
    """Every Deployment/StatefulSet with all replicas ready and every Service with a ready endpoint; a pod that can
    never start ends it."""

    def __init__(self, launch: Launch) -> None:
        self.launch = launch
        self.core = client.CoreV1Api(launch.api_client)
        apps = client.AppsV1Api(launch.api_client)
        self.readers: dict[str, Callable[[str, str], Any]] = {
            "Deployment": apps.read_namespaced_deployment_status,
            "StatefulSet": apps.read_namespaced_stateful_set_status,
        }
        self.services = launch.names("Service")
        self.workloads = [(r.kind, r.name) for r in launch.refs if r.kind in self.readers]
        self.awaited = f"service workload {launch.spec.name} to be ready"
        self.evidence_selector = launch.selector

    def probe(self) -> _State:
        namespace = self.launch.namespace
        controllers = []
        for kind, name in self.workloads:
            obj = self.readers[kind](name, namespace)
            controllers.append((f"{kind.lower()} {name}", obj.spec.replicas or 0, obj.status.ready_replicas or 0))
        endpoints = {}
        for name in self.services:
            try:
                ep = self.core.read_namespaced_endpoints(name, namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                endpoints[name] = 0  # the endpoints controller writes it asynchronously, on every cluster
                continue
            endpoints[name] = sum(len(s.addresses or []) for s in ep.subsets or [])
        pods = self.core.list_namespaced_pod(namespace, label_selector=self.launch.selector).items
        return _State(controllers, endpoints, pods)

    def done(self, state: _State) -> bool:
        return state.ready()

    def impossible(self, state: _State) -> str | None:
        return pod_blocker(state.pods)

    def explain(self, evidence: Evidence, logs: Callable[[], dict[str, str]]) -> str:
        return ""


@contextmanager
def run_service(spec: WorkloadSpec, rendered: Rendered, context: RunContext) -> Iterator[ServiceHandle]:
    """Apply, wait until ready, yield the Services' addresses; evidence and artifacts are collected on exit (also
    on failure), and a workload that cannot get ready raises :class:`WorkloadFailed` with the evidence."""
    launched = launch(spec, rendered, context)
    watch = _ServiceWatch(launched)
    handle = ServiceHandle(workload=spec.name, namespace=context.namespace, endpoints={}, refs=launched.refs)
    try:
        outcome = await_watch(watch, context.timeout_s)
        if outcome.failure is not None:
            evidence = gather(context.api_client, context.namespace, label_selector=watch.evidence_selector)
            raise WorkloadFailed(f"{outcome.failure}. {evidence.explain()}")
        for name in watch.services:
            svc_spec = watch.core.read_namespaced_service(name, context.namespace).spec or client.V1ServiceSpec()
            ports = {p.name or "": p.port for p in svc_spec.ports or []}
            if not svc_spec.cluster_ip:
                raise WorkloadFailed(f"service workload {spec.name}: Service {name} has no cluster IP")
            handle.endpoints[name] = Endpoint(service=name, cluster_ip=svc_spec.cluster_ip, ports=ports)
        log.info("service workload %s ready: %s", spec.name, ", ".join(handle.endpoints))
        yield handle
    finally:
        handle.evidence = collect(context, watch.evidence_selector)
