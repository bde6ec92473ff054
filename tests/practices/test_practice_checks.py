"""Best-practice rules on hand-written API objects, and the untolerated-pod probe on the embedded scheduler."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from harness.cluster.target import Connection
from harness.practices.checks import (
    ai_namespaces,
    is_default_deny,
    isolation_findings,
    pod_security_findings,
    priority_findings,
    quota_findings,
    reservation_findings,
    storage_tier_findings,
    topology_findings,
)
from harness.practices.snapshot import read_platform, untolerated_pod_outcome


def node(
    name: str, *, gpus: int = 0, taints: list[dict[str, str]] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    allocatable = {"cpu": "8", **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or []},
        "status": {"allocatable": allocatable},
    }


def pod(namespace: str, *, gpus: int = 0, owner: str = "ReplicaSet") -> dict[str, Any]:
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {
        "metadata": {"namespace": namespace, "ownerReferences": [{"kind": owner, "name": "x"}]},
        "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]},
    }


def test_reservation_needs_a_noschedule_or_noexecute_taint() -> None:
    nodes = [
        node("cpu-0"),
        node("gpu-0", gpus=8, taints=[{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]),
        node("gpu-1", gpus=8, taints=[{"key": "nvidia.com/gpu", "effect": "PreferNoSchedule"}]),
    ]
    (finding,) = reservation_findings(nodes)
    assert finding.startswith("node gpu-1 (8 nvidia.com/gpu) has no NoSchedule/NoExecute taint")


def test_fabric_labels_on_accelerator_nodes() -> None:
    good = node("g0", gpus=8, labels={"network.topology.kubernetes.io/block": "b"})
    findings = topology_findings([good, node("g1", gpus=8), node("cpu")])
    assert findings == [
        "node g1 lacks a fabric label (network.topology.kubernetes.io/block, network.topology.kubernetes.io/rack, "
        "network.topology.kubernetes.io/spine, ...)"
    ]


def test_ai_namespaces_exclude_system_and_daemonsets() -> None:
    pods = [
        pod("team-a", gpus=1),
        pod("gpu-operator", gpus=1, owner="DaemonSet"),
        pod("kube-system", gpus=1),
        pod("web"),
    ]
    assert ai_namespaces(pods) == ["team-a"]


def test_priority_quota_isolation_and_pod_security() -> None:
    system = [{"metadata": {"name": "system-cluster-critical"}}]
    assert priority_findings(system)
    assert priority_findings([*system, {"metadata": {"name": "inference-high"}}]) == []
    quota = {"spec": {"hard": {"requests.nvidia.com/gpu": "16"}}}
    assert quota_findings("team-a", [quota]) == []
    assert quota_findings("team-a", [{"spec": {"hard": {"pods": "10"}}}]) == [
        "namespace team-a: no ResourceQuota caps requests.nvidia.com/gpu (or another accelerator)"
    ]
    deny = {"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    allow = {"spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}}
    narrow = {"spec": {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress"]}}
    assert is_default_deny(deny) and not is_default_deny(allow) and not is_default_deny(narrow)
    assert isolation_findings("team-a", [allow, deny]) == []
    assert isolation_findings("team-a", [allow, narrow])
    restricted = {"metadata": {"name": "a", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    assert pod_security_findings(restricted) == []
    assert pod_security_findings({"metadata": {"name": "b"}}) == [
        "namespace b: Pod Security enforce level is not set, not restricted"
    ]


def test_storage_tiers_need_two_distinct_classes() -> None:
    ssd = {"metadata": {"name": "premium"}, "provisioner": "pd.csi.storage.gke.io", "parameters": {"type": "pd-ssd"}}
    hdd = {
        "metadata": {"name": "standard"},
        "provisioner": "pd.csi.storage.gke.io",
        "parameters": {"type": "pd-standard"},
    }
    same = {"metadata": {"name": "premium-2"}, "provisioner": "pd.csi.storage.gke.io", "parameters": {"type": "pd-ssd"}}
    assert storage_tier_findings([ssd, hdd]).findings == ()
    assert storage_tier_findings([ssd, same]).findings == (
        "only 1 distinct storage class(es) (premium, premium-2): no storage tiering",
    )


# ----------------------------------------------------------------------------- against the embedded scheduler
@pytest.mark.parametrize(("target_node", "kept_off"), [("gpu-0", True), ("cpu-0", False)])
def test_untolerated_probe_on_the_embedded_scheduler(
    emulated_api: client.ApiClient, emulated_ns: str, target_node: str, kept_off: bool
) -> None:
    outcome = untolerated_pod_outcome(
        Connection(emulated_api), emulated_ns, node=target_node, labels={"t": "1"}, timeout_s=30
    )
    if kept_off:
        assert outcome.startswith("Unschedulable: ")
        assert "untolerated taint" in outcome
    else:
        assert outcome == "scheduled on cpu-0"


def test_snapshot_reads_the_platform(emulated_api: client.ApiClient) -> None:
    snapshot = read_platform(Connection(emulated_api))
    assert {n["metadata"]["name"] for n in snapshot.nodes} >= {"gpu-0", "gpu-1", "cpu-0"}
    assert reservation_findings(snapshot.nodes) == []
    assert snapshot.storage_classes
