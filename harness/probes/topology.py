"""Network topology of the target's nodes, node choice for pod-to-pod tests, and where a gang of pods landed.

Why: collective performance depends on how many switch hops separate the ranks, so a report must show the
topology labels nodes carry (zone, and block/rack/spine as ``network.topology.kubernetes.io/*`` or the providers'
own labels), a co-location check must pick a topology level that exists on the cluster, and pod-to-pod tests must
choose same-node and cross-node pairs on purpose. Where a gang landed becomes measurements (:func:`gang_evidence`);
the verdict on them is the ``gang-placed-whole`` rule of :mod:`harness.thresholds.verdicts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from harness.cluster.capabilities import NodeInfo
from harness.cluster.fields import annotations_of, name_of, pod_spec, pod_status
from harness.cluster.target import ClusterHandle
from harness.labels import EMULATED
from harness.measurement import Measurement
from harness.probes.accelerators import cpu_pod_lands_on
from harness.quantity import to_millis

__all__ = [
    "HOSTNAME",
    "TOPOLOGY_KEYS",
    "PodPlacement",
    "colocation_key",
    "describe_placements",
    "domains",
    "gang_evidence",
    "hostname_of",
    "measurable_nodes",
    "node_pairs",
    "over_capacity_gang",
    "placement_of",
    "topology_table",
]

HOSTNAME = "kubernetes.io/hostname"

#: Topology label keys, narrowest domain first. The network.topology.kubernetes.io/* keys are the ones Kueue's
#: topology-aware scheduling and the embedded target's cluster spec use; the provider keys are what GKE
#: (compact placement / TAS) and EKS (instance topology API) put on nodes.
TOPOLOGY_KEYS: tuple[str, ...] = (
    "network.topology.kubernetes.io/accelerator",
    "cloud.google.com/gce-topology-host",
    "network.topology.kubernetes.io/rack",
    "topology.k8s.aws/network-node-layer-3",
    "cloud.google.com/gce-topology-subblock",
    "network.topology.kubernetes.io/block",
    "topology.k8s.aws/network-node-layer-2",
    "cloud.google.com/gce-topology-block",
    "network.topology.kubernetes.io/spine",
    "topology.k8s.aws/network-node-layer-1",
    "network.topology.kubernetes.io/datacenter",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
)


def hostname_of(node: NodeInfo) -> str:
    """The node's ``kubernetes.io/hostname`` label (what a nodeSelector matches; not always the node name)."""
    return node.labels.get(HOSTNAME, node.name)


def topology_table(nodes: Iterable[NodeInfo]) -> list[dict[str, str]]:
    """One row per node: name, emulated or not, and every topology label it carries (for the report)."""
    rows = []
    for node in nodes:
        row = {"node": node.name, "emulated": "true" if node.emulated else "false"}
        row.update({key: node.labels[key] for key in TOPOLOGY_KEYS if key in node.labels})
        rows.append(row)
    return rows


def domains(nodes: Iterable[NodeInfo], key: str) -> dict[str, list[str]]:
    """Topology domain value -> node names, for the nodes that carry ``key``."""
    out: dict[str, list[str]] = {}
    for node in nodes:
        if key in node.labels:
            out.setdefault(node.labels[key], []).append(node.name)
    return out


def measurable_nodes(nodes: Iterable[NodeInfo]) -> list[NodeInfo]:
    """Ready, untainted, real (not emulated) nodes: where a measuring pod without tolerations can run."""
    return [n for n in nodes if cpu_pod_lands_on(n) and not n.emulated]


def node_pairs(nodes: Sequence[NodeInfo], path: str) -> tuple[NodeInfo, NodeInfo] | str:
    """(server node, client node) for ``path`` = ``same-node`` or ``cross-node``, or why there is none.

    Cross-node prefers two nodes in one zone (the usual path of a training job) when zones are labelled.
    """
    candidates = measurable_nodes(nodes)
    if not candidates:
        return "no ready, untainted, non-emulated node to run the probe pods on"
    if path == "same-node":
        return candidates[0], candidates[0]
    if path != "cross-node":
        raise ValueError(f"path must be same-node or cross-node (got {path!r})")
    if len(candidates) < 2:
        return f"needs 2 ready, untainted, non-emulated nodes; the target has {len(candidates)}"
    by_zone = domains(candidates, "topology.kubernetes.io/zone")
    for names in by_zone.values():
        if len(names) >= 2:
            pair = [n for n in candidates if n.name in names[:2]]
            return pair[0], pair[1]
    return candidates[0], candidates[1]


def colocation_key(nodes: Sequence[NodeInfo]) -> tuple[str, str, list[str]]:
    """(topology key, domain, its schedulable nodes) for a co-location check.

    The narrowest labelled level that has a domain with at least two schedulable nodes (so the scheduler has a
    real choice to get wrong; the domain with the most nodes wins), falling back to the hostname (one node).
    """
    schedulable = [n for n in nodes if cpu_pod_lands_on(n)]
    if not schedulable:
        raise ValueError("no ready, untainted node")
    for key in TOPOLOGY_KEYS:
        found = domains(schedulable, key)
        if found:
            value, names = max(found.items(), key=lambda kv: (len(kv[1]), kv[0]))
            if len(names) >= 2:
                return key, value, names
    return HOSTNAME, hostname_of(schedulable[0]), [schedulable[0].name]


@dataclass(frozen=True, slots=True, kw_only=True)
class PodPlacement:
    pod: str
    node: str
    phase: str
    emulated: bool


def placement_of(cluster: ClusterHandle, namespace: str, label_selector: str) -> list[PodPlacement]:
    """Where the selected pods are: node (empty while Pending) and phase."""
    pods = client.CoreV1Api(cluster.api_client).list_namespaced_pod(namespace, label_selector=label_selector).items
    return [
        PodPlacement(
            pod=name_of(p),
            node=pod_spec(p).node_name or "",
            phase=pod_status(p).phase or "Unknown",
            emulated=annotations_of(p).get(EMULATED) == "true",
        )
        for p in sorted(pods, key=name_of)
    ]


def gang_evidence(
    placements: Sequence[PodPlacement], nodes: Sequence[NodeInfo], *, key: str, expected: int
) -> list[Measurement]:
    """``gang_size`` (the pods expected) and one ``gang_pod{pod, node, domain, topology_key}`` per pod (1 placed,
    0 not): what the ``gang-placed-whole`` verdict rule judges. ``domain`` is the node's value of ``key`` (empty
    when the node lacks the label, which the rule counts as no domain)."""
    labels = {n.name: n.labels for n in nodes}
    emulated = any(p.emulated for p in placements)
    out = [Measurement(metric="gang_size", value=expected, unit="count", labels={"topology_key": key},
                       emulated=emulated)]  # fmt: skip
    for p in placements:
        domain = labels.get(p.node, {}).get(key, "") if p.node else ""
        out.append(
            Measurement(
                metric="gang_pod",
                value=1 if p.node else 0,
                unit="count",
                labels={"pod": p.pod, "node": p.node, "domain": domain, "topology_key": key},
                emulated=p.emulated,
            )
        )
    return out


def describe_placements(placements: Iterable[PodPlacement]) -> list[dict[str, Any]]:
    """Rows for the report: pod, node, phase, emulated."""
    return [{"pod": p.pod, "node": p.node, "phase": p.phase, "emulated": p.emulated} for p in placements]


def over_capacity_gang(nodes: Sequence[NodeInfo]) -> tuple[int, str]:
    """(gang size, CPU request per pod) for a gang that cannot fit as a whole but would partly fit without gang
    scheduling: each pod takes 60% of the largest schedulable node's CPU (one pod per node at most), and the gang
    has one pod more than there are schedulable nodes. A scheduler that starts some of its pods is not all-or-nothing.
    """
    schedulable = [n for n in nodes if cpu_pod_lands_on(n)]
    if not schedulable:
        raise ValueError("no ready, untainted node")
    largest = max(to_millis(n.allocatable.get("cpu", "0")) for n in schedulable)
    return len(schedulable) + 1, f"{largest * 6 // 10}m"
