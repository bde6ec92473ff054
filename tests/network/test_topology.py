"""Topology helpers, and gang co-location run against the embedded scheduler with emulated nodes in blocks."""

from __future__ import annotations

import pytest
from kubernetes import client
from workload_runs import run_context

from harness.catalog.render import render
from harness.catalog.spec import load_workload
from harness.cluster.capabilities import Capabilities, NodeInfo
from harness.cluster.namespaces import run_labels
from harness.cluster.target import Connection
from harness.errors import WorkloadFailed
from harness.probes.topology import (
    HOSTNAME,
    PodPlacement,
    colocation_key,
    domains,
    gang_evidence,
    node_pairs,
    over_capacity_gang,
    placement_of,
    topology_table,
)
from harness.runners.service import run_service
from harness.thresholds.model import Check, RuleKind, Status
from harness.thresholds.verdicts import judge

BLOCK = "network.topology.kubernetes.io/block"


def _node(name: str, *, emulated: bool = False, taint: str = "", **labels: str) -> NodeInfo:
    keys = {"zone": "topology.kubernetes.io/zone", "block": BLOCK, "host": HOSTNAME}
    return NodeInfo(
        name=name,
        labels={keys[k]: v for k, v in labels.items()},
        allocatable={},
        taints=({"key": "k", "value": "", "effect": taint},) if taint else (),
        ready=True,
        emulated=emulated,
    )


def test_colocation_key_prefers_the_narrowest_level_with_a_choice() -> None:
    nodes = [_node("a", zone="z1", block="b1"), _node("b", zone="z1", block="b2"), _node("c", zone="z1", block="b2")]
    assert colocation_key(nodes) == (BLOCK, "b2", ["b", "c"])
    singles = [_node("a", zone="z1", block="b1"), _node("b", zone="z1", block="b2")]
    assert colocation_key(singles) == ("topology.kubernetes.io/zone", "z1", ["a", "b"])
    assert colocation_key([_node("solo", host="solo-host")]) == (HOSTNAME, "solo-host", ["solo"])
    tainted = [_node("a", zone="z1", taint="NoSchedule"), _node("b", zone="z1"), _node("c", zone="z2")]
    assert colocation_key(tainted)[0] == HOSTNAME  # a tainted node is no real choice


def test_node_pairs_choose_real_untainted_nodes() -> None:
    nodes = [_node("emu", emulated=True, zone="z1"), _node("a", zone="z2"), _node("b", zone="z1"),
             _node("c", zone="z1")]  # fmt: skip
    same = node_pairs(nodes, "same-node")
    assert not isinstance(same, str) and same[0] is same[1] and not same[0].emulated
    cross = node_pairs(nodes, "cross-node")
    assert not isinstance(cross, str) and [n.name for n in cross] == ["b", "c"]  # same zone preferred
    assert node_pairs([_node("a")], "cross-node") == "needs 2 ready, untainted, non-emulated nodes; the target has 1"


def _verdict(placements: list[PodPlacement], nodes: list[NodeInfo], *, key: str, expected: int) -> Check:
    """The gang-placed-whole rule on the evidence the suite records (built-in rule: no profile)."""
    checks = judge(None, "net-gang", RuleKind.GANG_WHOLE, gang_evidence(placements, nodes, key=key, expected=expected))
    assert len(checks) == 1
    return checks[0]


def test_verdict_names_a_split_gang() -> None:
    nodes = [_node("a", block="b1"), _node("b", block="b2"), _node("c")]
    split = [PodPlacement(pod="p0", node="a", phase="Running", emulated=False),
             PodPlacement(pod="p1", node="b", phase="Running", emulated=False)]  # fmt: skip
    verdict = _verdict(split, nodes, key=BLOCK, expected=2)
    assert verdict.status is Status.FAILED and verdict.kind is RuleKind.GANG_WHOLE
    assert verdict.detail == f"gang split across {BLOCK} domains: b1: 1 pod(s), b2: 1 pod(s)"
    assert verdict.message.startswith(f"gang-one-domain: gang split across {BLOCK} domains")
    pending = [split[0], PodPlacement(pod="p1", node="", phase="Pending", emulated=False)]
    assert "pods not placed: p1" in _verdict(pending, nodes, key=BLOCK, expected=2).detail
    assert "1 of 2 pods exist" in _verdict(split[:1], nodes, key=BLOCK, expected=2).detail
    unlabelled = [split[0], PodPlacement(pod="p1", node="c", phase="Running", emulated=False)]
    assert _verdict(unlabelled, nodes, key=BLOCK, expected=2).status is Status.FAILED
    whole = [split[0], PodPlacement(pod="p1", node="a", phase="Running", emulated=False)]
    passed = _verdict(whole, nodes, key=BLOCK, expected=2)
    assert (
        passed.status is Status.PASSED and passed.detail == f"2 pods in one {BLOCK} domain (b1: 2 pod(s)) on 1 node(s)"
    )
    assert judge(None, "net-gang", RuleKind.GANG_WHOLE, [])[0].status is Status.NO_DATA


def _gang(api: client.ApiClient, ns: str, **params: str):
    spec = load_workload("net-gang")
    rendered = render(spec, params, context={"scripts_configmap": "unused"})
    return run_service(spec, rendered, run_context(api, ns, run_labels("run-t", "gang"), timeout_s=30))


def test_gang_lands_in_one_block_of_the_emulated_fabric(
    fabric_api: client.ApiClient, fabric_ns: str, fabric_caps: Capabilities
) -> None:
    assert {r.get(BLOCK) for r in topology_table(fabric_caps.nodes)} == {"b0", "b1"}
    key, _, block_nodes = colocation_key(fabric_caps.nodes)
    assert key == BLOCK  # racks hold one node each: the block is the narrowest level with a choice
    with _gang(fabric_api, fabric_ns, size="5", topology_key=key) as handle:
        placements = placement_of(Connection(fabric_api), handle.namespace, "app.kubernetes.io/name=net-gang")
    verdict = _verdict(placements, list(fabric_caps.nodes), key=key, expected=5)
    assert verdict.status is Status.PASSED, verdict.message
    assert all(p.emulated for p in placements)
    assert len({p.node for p in placements}) == 3  # spread over the block's nodes, two pods per node at most
    assert len(domains(fabric_caps.nodes, BLOCK)) == 2 and len(block_nodes) >= 2


def test_gang_bigger_than_a_block_is_not_split(
    fabric_api: client.ApiClient, fabric_ns: str, fabric_caps: Capabilities
) -> None:
    """Seven pods cannot fit in one block of three 2-pod nodes: the scheduler leaves the rest Pending rather than
    spilling into the other block, and the runner reports it as Unschedulable."""
    with (
        pytest.raises(WorkloadFailed, match="Unschedulable"),
        _gang(fabric_api, fabric_ns, size="7", topology_key=BLOCK),
    ):
        pass
    block_of = {n.name: n.labels[BLOCK] for n in fabric_caps.nodes}
    placed = placement_of(Connection(fabric_api), fabric_ns, "app.kubernetes.io/name=net-gang")
    assert any(not p.node for p in placed), "some pod must be left Pending"
    assert len({block_of[p.node] for p in placed if p.node}) == 1


def test_over_capacity_gang_fits_one_pod_per_node_and_one_too_many() -> None:
    nodes = [
        NodeInfo(name="a", labels={}, allocatable={"cpu": "16"}, taints=(), ready=True, emulated=False),
        NodeInfo(name="b", labels={}, allocatable={"cpu": "7500m"}, taints=(), ready=True, emulated=False),
        _node("tainted", taint="NoSchedule"),
    ]
    assert over_capacity_gang(nodes) == (3, "9600m")  # 60% of 16 cores: one per node; 3 pods for 2 nodes
