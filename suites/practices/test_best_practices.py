"""The seed's best practices, checked read-only: accelerator reservation (the taint itself is checked per pool in
compute/test_placement.py; here a pod without toleration is shown to be kept off), fabric labels for co-location,
priorities, quotas, default-deny ingress, Pod Security on AI namespaces, and storage tiering."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from harness.cluster.namespaces import run_labels
from harness.fixture_types import HarnessConfig, Target, TestRecord
from harness.practices.checks import (
    accelerator_count,
    accelerator_nodes,
    isolation_findings,
    pod_security_findings,
    priority_findings,
    quota_findings,
    reservation_findings,
    storage_tier_findings,
    topology_findings,
)
from harness.practices.snapshot import PlatformSnapshot, untolerated_pod_outcome

pytestmark = [pytest.mark.practices]

SCHEDULING_DECISION_S = 60


@pytest.fixture
def accelerator_node_objects(platform: PlatformSnapshot) -> list[Mapping[str, Any]]:
    nodes = accelerator_nodes(platform.nodes)
    if not nodes:
        pytest.skip("no node has allocatable nvidia.com/gpu, google.com/tpu or amd.com/gpu")
    return nodes


def _names(nodes: list[Mapping[str, Any]]) -> str:
    return ", ".join(n["metadata"]["name"] for n in nodes)


def test_pod_without_toleration_is_kept_off_accelerator_nodes(
    request: pytest.FixtureRequest,
    accelerator_node_objects: list[Mapping[str, Any]],
    target: Target,
    namespace: str,
    harness_config: HarnessConfig,
    record: TestRecord,
) -> None:
    """A pod that asks for a GPU/TPU node by name but tolerates nothing stays Pending, and the scheduler says the
    taint is why (checked once the scheduler has decided, not waited out)."""
    reserved = [n for n in accelerator_node_objects if not reservation_findings([n])]
    node = (reserved or accelerator_node_objects)[0]["metadata"]["name"]  # an untainted one fails, as it should
    outcome = untolerated_pod_outcome(
        target,
        namespace,
        node=node,
        labels=run_labels(harness_config.run_id, request.node.nodeid),
        timeout_s=harness_config.timeout(SCHEDULING_DECISION_S),
    )
    record.add(params={"node": node, "outcome": outcome})
    assert outcome.startswith("Unschedulable"), f"a pod without tolerations was {outcome}: node {node} is not reserved"
    assert "taint" in outcome, f"the pod was kept off {node}, but not by a taint: {outcome}"


def test_accelerator_nodes_have_fabric_labels(
    accelerator_node_objects: list[Mapping[str, Any]], record: TestRecord
) -> None:
    """GPU/TPU nodes carry a fabric label (block, rack, spine or NVLink clique), so gangs can be co-located with
    node affinity or topology-aware scheduling (zone labels on every node: network/test_topology.py)."""
    findings = topology_findings(accelerator_node_objects)
    record.add(
        params={
            "nodes": "; ".join(
                f"{n['metadata']['name']}: {', '.join(f'{r}={c}' for r, c in accelerator_count(n).items())}"
                for n in accelerator_node_objects
            )
        }
    )
    assert not findings, "; ".join(findings)


def test_priority_classes_exist_for_ai_workloads(platform: PlatformSnapshot, ai_namespace_names: list[str]) -> None:
    """AI workloads can be prioritised: at least one PriorityClass besides the built-in system ones."""
    findings = priority_findings(platform.priority_classes)
    assert not findings, "; ".join(findings)


def test_ai_namespaces_cap_accelerators_with_quotas(
    platform: PlatformSnapshot, ai_namespace_names: list[str], record: TestRecord
) -> None:
    """Every namespace that runs accelerator pods caps them with a ResourceQuota."""
    record.add(params={"ai_namespaces": ", ".join(ai_namespace_names)})
    findings = [f for ns in ai_namespace_names for f in quota_findings(ns, platform.in_namespace("quotas", ns))]
    assert not findings, "; ".join(findings)


def test_ai_namespaces_deny_ingress_by_default(platform: PlatformSnapshot, ai_namespace_names: list[str]) -> None:
    """Network isolation: every namespace that runs accelerator pods has a default-deny ingress NetworkPolicy."""
    findings = [
        f for ns in ai_namespace_names for f in isolation_findings(ns, platform.in_namespace("network_policies", ns))
    ]
    assert not findings, "; ".join(findings)


def test_ai_namespaces_enforce_restricted_pod_security(
    platform: PlatformSnapshot, ai_namespace_names: list[str]
) -> None:
    """Every namespace that runs accelerator pods enforces the restricted Pod Security Standard."""
    findings = [f for ns in ai_namespace_names for f in pod_security_findings(platform.namespace(ns))]
    assert not findings, "; ".join(findings)


def test_storage_is_tiered(platform: PlatformSnapshot, record: TestRecord) -> None:
    """At least two distinct storage classes (provisioner or parameters differ): a fast tier and a capacity tier;
    the storage suite measures and ranks them."""
    tiers = storage_tier_findings(platform.storage_classes)
    record.add(params={"storage_classes": ", ".join(tiers.classes), "distinct": str(tiers.distinct)})
    assert not tiers.findings, "; ".join(tiers.findings)
