"""Best-practice rules over API objects (plain dicts as the API returns them). Each rule returns its findings as
sentences: an empty list is a pass. Pure, so every rule is tested on hand-written objects and applied unchanged to
a live cluster's snapshot (:mod:`harness.practices.snapshot`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ACCELERATORS: tuple[str, ...] = ("nvidia.com/gpu", "google.com/tpu", "amd.com/gpu")
RESERVING_EFFECTS = ("NoSchedule", "NoExecute")
#: labels that place a node inside a fabric (GKE, AWS, Azure, the Kubernetes network-topology KEP, NVIDIA)
FABRIC_LABELS: tuple[str, ...] = (
    "network.topology.kubernetes.io/block",
    "network.topology.kubernetes.io/rack",
    "network.topology.kubernetes.io/spine",
    "cloud.google.com/gce-topology-block",
    "cloud.google.com/gce-topology-subblock",
    "topology.k8s.aws/network-node-layer-1",
    "kubernetes.azure.com/network-topology",
    "nvidia.com/gpu.clique",
)
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
SYSTEM_NAMESPACE_PREFIXES = ("kube-", "openshift-")


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def accelerator_count(node: Mapping[str, Any]) -> dict[str, int]:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    out = {}
    for resource in ACCELERATORS:
        try:
            count = int(str(allocatable.get(resource, "0")))
        except ValueError:
            count = 0
        if count > 0:
            out[resource] = count
    return out


def accelerator_nodes(nodes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [n for n in nodes if accelerator_count(n)]


def reservation_findings(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    """GPU/TPU nodes carry a NoSchedule or NoExecute taint, so only pods that tolerate it (accelerator workloads)
    land there and no CPU-only pod can take the CPU and memory the accelerators need."""
    findings = []
    for node in accelerator_nodes(nodes):
        taints = (node.get("spec") or {}).get("taints") or []
        if not any(t.get("effect") in RESERVING_EFFECTS for t in taints):
            what = ", ".join(f"{n} {r}" for r, n in accelerator_count(node).items())
            findings.append(
                f"node {_name(node)} ({what}) has no NoSchedule/NoExecute taint: any pod can be scheduled there "
                "(taint it, e.g. nvidia.com/gpu=present:NoSchedule; GKE and AKS GPU pools do this by default)"
            )
    return findings


def topology_findings(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Accelerator nodes carry at least one fabric (block/rack/spine/clique) label, so gangs can be co-located
    with node affinity or topology-aware scheduling (zones are the network suite's check, on every node)."""
    return [
        f"node {_name(node)} lacks a fabric label ({', '.join(FABRIC_LABELS[:3])}, ...)"
        for node in accelerator_nodes(nodes)
        if not any(label in _labels(node) for label in FABRIC_LABELS)
    ]


def ai_namespaces(pods: Sequence[Mapping[str, Any]]) -> list[str]:
    """Namespaces whose pods request accelerators, other than system namespaces and DaemonSet pods (device
    plugins, exporters and validators run per node; they are platform, not AI workloads)."""
    found = set()
    for pod in pods:
        meta = pod.get("metadata") or {}
        namespace = meta.get("namespace", "")
        if namespace.startswith(SYSTEM_NAMESPACE_PREFIXES):
            continue
        if any(ref.get("kind") == "DaemonSet" for ref in meta.get("ownerReferences") or []):
            continue
        for container in (pod.get("spec") or {}).get("containers") or []:
            resources = container.get("resources") or {}
            wanted = {**(resources.get("requests") or {}), **(resources.get("limits") or {})}
            if any(r in wanted for r in ACCELERATORS):
                found.add(namespace)
    return sorted(found)


def priority_findings(priority_classes: Sequence[Mapping[str, Any]]) -> list[str]:
    """At least one PriorityClass besides the built-in system-* ones: without it, an inference pod cannot preempt a
    batch job for a GPU, and every pod competes at priority 0."""
    own = [pc for pc in priority_classes if not _name(pc).startswith("system-")]
    if own:
        return []
    return ["no PriorityClass besides system-cluster-critical/system-node-critical: AI workloads all run at priority 0"]


def quota_findings(namespace: str, quotas: Sequence[Mapping[str, Any]]) -> list[str]:
    """An AI namespace caps its accelerators with a ResourceQuota (``requests.nvidia.com/gpu`` and the like)."""
    hard_keys = {k for q in quotas for k in ((q.get("spec") or {}).get("hard") or {})}
    capped = [r for r in ACCELERATORS if f"requests.{r}" in hard_keys or r in hard_keys]
    if capped:
        return []
    return [f"namespace {namespace}: no ResourceQuota caps requests.nvidia.com/gpu (or another accelerator)"]


def is_default_deny(policy: Mapping[str, Any]) -> bool:
    """A policy selecting every pod (``podSelector: {}``) with Ingress in its types and no ingress rule."""
    spec = policy.get("spec") or {}
    selects_all = not (spec.get("podSelector") or {}).get("matchLabels") and not (spec.get("podSelector") or {}).get(
        "matchExpressions"
    )
    types = spec.get("policyTypes") or ["Ingress"]
    return selects_all and "Ingress" in types and not spec.get("ingress")


def isolation_findings(namespace: str, policies: Sequence[Mapping[str, Any]]) -> list[str]:
    """An AI namespace denies ingress by default; allow rules then open only what serving needs."""
    if any(is_default_deny(p) for p in policies):
        return []
    return [f"namespace {namespace}: no default-deny ingress NetworkPolicy (podSelector: {{}}, no ingress rules)"]


def pod_security_findings(namespace: Mapping[str, Any]) -> list[str]:
    """AI namespaces enforce the restricted Pod Security Standard (workloads that need more, such as RDMA with
    IPC_LOCK, belong in a namespace that documents why)."""
    level = _labels(namespace).get(PSA_ENFORCE)
    if level == "restricted":
        return []
    return [f"namespace {_name(namespace)}: Pod Security enforce level is {level or 'not set'}, not restricted"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageTierFinding:
    classes: tuple[str, ...]
    distinct: int
    findings: tuple[str, ...]


def storage_tier_findings(classes: Sequence[Mapping[str, Any]]) -> StorageTierFinding:
    """At least two StorageClasses that differ in provisioner or parameters: a fast tier for checkpoints and
    caches and a capacity tier for datasets (the storage suite measures which is which)."""
    kinds = {(c.get("provisioner", ""), tuple(sorted((c.get("parameters") or {}).items()))): _name(c) for c in classes}
    names = tuple(sorted(_name(c) for c in classes))
    findings: tuple[str, ...] = ()
    if len(kinds) < 2:
        findings = (f"only {len(kinds)} distinct storage class(es) ({', '.join(names) or 'none'}): no storage tiering",)
    return StorageTierFinding(classes=names, distinct=len(kinds), findings=findings)


__all__ = [
    "ACCELERATORS",
    "FABRIC_LABELS",
    "StorageTierFinding",
    "accelerator_count",
    "accelerator_nodes",
    "ai_namespaces",
    "is_default_deny",
    "isolation_findings",
    "pod_security_findings",
    "priority_findings",
    "quota_findings",
    "reservation_findings",
    "storage_tier_findings",
    "topology_findings",
]
