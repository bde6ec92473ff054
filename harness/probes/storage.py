"""Storage facts and probes the storage suite needs beyond running workloads: which classes exist, whether a
claim of a class binds (and how fast, or why not), where a WaitForFirstConsumer volume landed, the CSI drivers."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.fields import name_of, pod_spec
from harness.cluster.forbidden import explain_forbidden
from harness.cluster.target import ClusterHandle
from harness.cluster.wait import wait_for
from harness.errors import WaitTimeout

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class BindResult:
    storage_class: str
    bound: bool
    seconds: float
    volume: str
    problem: str  # the provisioner's event text when it did not bind


def _events_for(core: client.CoreV1Api, namespace: str, kind: str, name: str) -> list[str]:
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [f"{e.reason}: {e.message}" for e in events if e.involved_object.kind == kind and e.type == "Warning"]


def _phase(pvc: client.V1PersistentVolumeClaim) -> str:
    """The claim's phase (empty before the controller has reported one)."""
    return (pvc.status.phase if pvc.status else None) or ""


def _volume(pvc: client.V1PersistentVolumeClaim) -> str:
    """The bound volume's name (empty while unbound)."""
    return (pvc.spec.volume_name if pvc.spec else None) or ""


def _claim(name: str, storage_class: str, access_mode: str, size: str) -> Any:
    """A PersistentVolumeClaim body (a plain mapping: the client serialises it as given)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "storageClassName": storage_class,
            "accessModes": [access_mode],
            "resources": {"requests": {"storage": size}},
        },
    }


def probe_binding(
    cluster: ClusterHandle,
    namespace: str,
    storage_class: str,
    *,
    size: str = "64Mi",
    access_mode: str = "ReadWriteOnce",
    timeout_s: float = 60.0,
) -> BindResult:
    """Create a claim of ``storage_class`` and wait until it binds or its provisioner gives up.

    Only meaningful for Immediate-binding classes: a WaitForFirstConsumer claim binds when a pod uses it
    (:func:`probe_first_consumer`).
    """
    core = client.CoreV1Api(cluster.api_client)
    name = f"bind-{storage_class}"[:63].rstrip("-.")
    core.create_namespaced_persistent_volume_claim(namespace, _claim(name, storage_class, access_mode, size))
    started = time.monotonic()

    def state() -> tuple[client.V1PersistentVolumeClaim, list[str]]:
        pvc = core.read_namespaced_persistent_volume_claim(name, namespace)
        problems = [] if _phase(pvc) == "Bound" else _events_for(core, namespace, "PersistentVolumeClaim", name)
        return pvc, [p for p in problems if p.startswith("ProvisioningFailed")]

    try:
        pvc, problems = wait_for(
            state,
            timeout_s=timeout_s,
            describe=f"claim of class {storage_class} to bind",
            done=lambda s: _phase(s[0]) == "Bound" or bool(s[1]),
            state=lambda s: f"phase {_phase(s[0])}",
        )
    except WaitTimeout as exc:
        return BindResult(storage_class=storage_class, bound=False, seconds=timeout_s, volume="", problem=str(exc))
    bound = _phase(pvc) == "Bound"
    return BindResult(
        storage_class=storage_class,
        bound=bound,
        seconds=time.monotonic() - started,
        volume=_volume(pvc),
        problem="" if bound else "; ".join(problems),
    )


def csi_drivers(cluster: ClusterHandle) -> list[str]:
    """Names of the CSI drivers the cluster lists (empty when the API is not served or not readable)."""
    try:
        return sorted(name_of(d) for d in client.StorageV1Api(cluster.api_client).list_csi_driver().items)
    except ApiException as exc:
        if exc.status == 403:
            log.warning("cannot list CSI drivers: %s", explain_forbidden(exc) or exc.reason)
        if exc.status in (403, 404):
            return []
        raise


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstConsumerResult:
    storage_class: str
    bound: bool
    pod_node: str
    volume_nodes: tuple[str, ...]  # nodes the PV's nodeAffinity allows (empty: not node-bound)
    problem: str


def probe_first_consumer(
    cluster: ClusterHandle,
    namespace: str,
    storage_class: str,
    *,
    image: str,
    size: str = "64Mi",
    timeout_s: float = 120.0,
) -> FirstConsumerResult:
    """For a WaitForFirstConsumer class: a claim used by a pod binds on the node the pod was scheduled to."""
    core = client.CoreV1Api(cluster.api_client)
    name = f"wffc-{storage_class}"[:63].rstrip("-.")
    core.create_namespaced_persistent_volume_claim(namespace, _claim(name, storage_class, "ReadWriteOnce", size))
    consumer: Any = {  # a plain mapping: the client serialises it as given
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "consumer",
                    "image": image,
                    "command": ["sh", "-c", "true"],
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                }
            ],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": name}}],
        },
    }
    core.create_namespaced_pod(namespace, consumer)

    def state() -> tuple[client.V1PersistentVolumeClaim, client.V1Pod]:
        return core.read_namespaced_persistent_volume_claim(name, namespace), core.read_namespaced_pod(name, namespace)

    try:
        pvc, pod = wait_for(
            state,
            timeout_s=timeout_s,
            describe=f"first-consumer claim of class {storage_class}",
            done=lambda s: _phase(s[0]) == "Bound" and bool(pod_spec(s[1]).node_name),
            state=lambda s: f"claim {_phase(s[0])}, pod on {pod_spec(s[1]).node_name or 'no node'}",
        )
    except WaitTimeout as exc:
        return FirstConsumerResult(
            storage_class=storage_class, bound=False, pod_node="", volume_nodes=(), problem=str(exc)
        )
    pv = core.read_persistent_volume(_volume(pvc))
    nodes: list[str] = []
    pv_affinity = pv.spec.node_affinity if pv.spec else None
    affinity = pv_affinity.required if pv_affinity else None
    for term in affinity.node_selector_terms if affinity else []:
        for expr in term.match_expressions or []:
            if expr.key == "kubernetes.io/hostname" and expr.operator == "In":
                nodes.extend(expr.values or [])
    return FirstConsumerResult(
        storage_class=storage_class,
        bound=True,
        pod_node=pod_spec(pod).node_name or "",
        volume_nodes=tuple(nodes),
        problem="",
    )
