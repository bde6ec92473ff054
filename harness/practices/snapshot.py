"""Read what the practice checks need, once, read-only (list calls only), as the plain dicts the API returns.

The one write the practices suite makes is :func:`untolerated_pod_outcome`: a pod in the test's own namespace,
aimed at a tainted accelerator node without a toleration, to see the taint keep it off. It never cordons, taints
or labels a node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from harness.cluster.fields import pod_spec, pod_status
from harness.cluster.target import ClusterHandle
from harness.cluster.wait import wait_for

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformSnapshot:
    nodes: tuple[dict[str, Any], ...]
    pods: tuple[dict[str, Any], ...]
    namespaces: tuple[dict[str, Any], ...]
    priority_classes: tuple[dict[str, Any], ...]
    quotas: tuple[dict[str, Any], ...]
    network_policies: tuple[dict[str, Any], ...]
    storage_classes: tuple[dict[str, Any], ...]

    def in_namespace(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        objects: tuple[dict[str, Any], ...] = getattr(self, kind)
        return [o for o in objects if (o.get("metadata") or {}).get("namespace") == namespace]

    def namespace(self, name: str) -> dict[str, Any]:
        return next((n for n in self.namespaces if n["metadata"]["name"] == name), {"metadata": {"name": name}})


def read_platform(cluster: ClusterHandle) -> PlatformSnapshot:
    api_client = cluster.api_client
    core = client.CoreV1Api(api_client)

    def plain(items: list[Any]) -> tuple[dict[str, Any], ...]:
        return tuple(api_client.sanitize_for_serialization(item) for item in items)

    return PlatformSnapshot(
        nodes=plain(core.list_node().items),
        pods=plain(core.list_pod_for_all_namespaces().items),
        namespaces=plain(core.list_namespace().items),
        priority_classes=plain(client.SchedulingV1Api(api_client).list_priority_class().items),
        quotas=plain(core.list_resource_quota_for_all_namespaces().items),
        network_policies=plain(client.NetworkingV1Api(api_client).list_network_policy_for_all_namespaces().items),
        storage_classes=plain(client.StorageV1Api(api_client).list_storage_class().items),
    )


def untolerated_pod_outcome(
    cluster: ClusterHandle,
    namespace: str,
    *,
    node: str,
    labels: Mapping[str, str],
    timeout_s: float,
) -> str:
    """Create a pause pod that requires ``node`` (by name, through node affinity) and tolerates nothing, then
    report what the scheduler did: ``"Unschedulable: <message>"`` or ``"scheduled on <node>"``. Kept off is the
    pass; the pod is left for the namespace's teardown."""
    core = client.CoreV1Api(cluster.api_client)
    name = "untolerated-probe"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                        ]
                    }
                }
            },
            "containers": [
                {
                    "name": "pause",
                    "image": PAUSE_IMAGE,
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "runAsNonRoot": True,
                        "runAsUser": 65535,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
            "terminationGracePeriodSeconds": 0,
        },
    }
    core.create_namespaced_pod(namespace, client.V1Pod.model_validate(pod))  # what the client does with a dict

    def outcome() -> str:
        current = core.read_namespaced_pod(name, namespace)
        if node_name := pod_spec(current).node_name:
            return f"scheduled on {node_name}"
        for cond in pod_status(current).conditions or []:
            if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
                return f"Unschedulable: {cond.message}"
        return ""

    return wait_for(outcome, timeout_s=timeout_s, describe=f"the scheduler's decision on pod {namespace}/{name}")


__all__ = ["PAUSE_IMAGE", "PlatformSnapshot", "read_platform", "untolerated_pod_outcome"]
