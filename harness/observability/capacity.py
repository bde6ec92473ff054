"""The capacity and utilisation panel: allocatable vs requested vs used, per node pool and resource.

The seed asks for "resource utilisation analysis, bottleneck identification, capacity planning". The numbers come
from two places a platform already has: the API (node allocatable, the requests of pods bound to each node) and,
when there is one, Prometheus (node-exporter CPU and memory use by ``nodename``, dcgm-exporter GPU utilisation by
``Hostname``). Pure functions over plain values, so the panel is computed the same way from a live cluster and in
tests.

Fragmentation is the question capacity planning on GPU clusters asks most: "N GPUs are free, but can an 8-GPU job
start?". For each gang size N, the GPUs that are free but sit on nodes with fewer than N free are unusable for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.cluster.capabilities import NodeInfo
from harness.probes.accelerators import accelerator_kind, accelerator_of, pool_name
from harness.quantity import parse_quantity

GPU = "nvidia.com/gpu"
TPU = "google.com/tpu"
RESOURCES: tuple[str, ...] = ("cpu", "memory", GPU, TPU)
GANG_SIZES: tuple[int, ...] = (1, 2, 4, 8)
_TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeCapacity:
    """One node: allocatable and requested amounts (cores, bytes, devices) and measured use where known."""

    name: str
    pool: str
    allocatable: Mapping[str, float]
    requested: Mapping[str, float]
    used: Mapping[str, float] = field(default_factory=dict)
    emulated: bool = False

    def free(self, resource: str) -> float:
        return max(0.0, self.allocatable.get(resource, 0.0) - self.requested.get(resource, 0.0))


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolRow:
    """One (pool, resource) line of the panel."""

    pool: str
    resource: str
    nodes: int
    allocatable: float
    requested: float
    used: float | None  # None: nothing measures it (no Prometheus, or no exporter for this resource)

    @property
    def requested_share(self) -> float:
        return self.requested / self.allocatable if self.allocatable else 0.0


def pool_of(labels: Mapping[str, str], allocatable: Mapping[str, Any]) -> str:
    """The node's pool exactly as the node-pool inventory names it (managed pool label, else kind:accelerator)."""
    node = NodeInfo(
        name="",
        labels=dict(labels),
        allocatable={k: str(v) for k, v in allocatable.items()},
        taints=(),
        ready=True,
        emulated=False,
    )
    return pool_name(labels, accelerator_kind(node), accelerator_of(node))


def _amount(resource: str, text: str) -> float:
    return float(parse_quantity(str(text)))


def pod_requests(pod: Mapping[str, Any]) -> dict[str, float]:
    """Effective requests of a pod as the scheduler counts them: max(sum of containers, largest init container),
    plus overhead; a limit without a request counts as the request (the API server defaults it so)."""
    spec = pod.get("spec") or {}

    def of(container: Mapping[str, Any]) -> dict[str, float]:
        res = container.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        return {r: _amount(r, v) for r, v in merged.items() if r in RESOURCES}

    total: dict[str, float] = defaultdict(float)
    for container in spec.get("containers") or []:
        for r, v in of(container).items():
            total[r] += v
    for container in spec.get("initContainers") or []:
        for r, v in of(container).items():
            total[r] = max(total[r], v)
    for r, v in (spec.get("overhead") or {}).items():
        if r in RESOURCES:
            total[r] += _amount(r, v)
    return dict(total)


def node_capacities(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    used: Mapping[str, Mapping[str, float]] | None = None,
) -> list[NodeCapacity]:
    """Nodes and pods as API dicts (``to_dict()`` of client models works, with snake_case keys mapped by the
    caller), ``used``: node name -> resource -> measured amount."""
    requested: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or (pod.get("status") or {}).get("phase") in _TERMINAL:
            continue
        for r, v in pod_requests(pod).items():
            requested[node][r] += v
    out = []
    for node in nodes:
        meta = node.get("metadata") or {}
        name = meta.get("name", "")
        labels = meta.get("labels") or {}
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        out.append(
            NodeCapacity(
                name=name,
                pool=pool_of(labels, allocatable),
                allocatable={r: _amount(r, allocatable[r]) for r in RESOURCES if r in allocatable},
                requested=dict(requested.get(name, {})),
                used=dict((used or {}).get(name, {})),
                emulated=(meta.get("annotations") or {}).get("aibench.io/emulated") == "true",
            )
        )
    return out


def pool_rows(nodes: Sequence[NodeCapacity]) -> list[PoolRow]:
    """The panel: one row per (pool, resource) that some node of the pool has."""
    rows = []
    pools = sorted({n.pool for n in nodes})
    for pool in pools:
        members = [n for n in nodes if n.pool == pool]
        for resource in RESOURCES:
            having = [n for n in members if n.allocatable.get(resource, 0) > 0]
            if not having:
                continue
            measured = [n.used[resource] for n in having if resource in n.used]
            rows.append(
                PoolRow(
                    pool=pool,
                    resource=resource,
                    nodes=len(having),
                    allocatable=sum(n.allocatable[resource] for n in having),
                    requested=sum(n.requested.get(resource, 0.0) for n in having),
                    used=sum(measured) if len(measured) == len(having) else None,
                )
            )
    return rows


@dataclass(frozen=True, slots=True, kw_only=True)
class Fragmentation:
    """For a gang of ``size`` devices on one node: how many fit now, and how many free devices cannot serve it."""

    resource: str
    size: int
    free: int
    fits: int
    stranded: int


def fragmentation(nodes: Sequence[NodeCapacity], resource: str = GPU) -> list[Fragmentation]:
    free = [int(n.free(resource)) for n in nodes if n.allocatable.get(resource, 0) > 0]
    total = sum(free)
    return [
        Fragmentation(
            resource=resource,
            size=size,
            free=total,
            fits=sum(f // size for f in free),
            stranded=total - size * sum(f // size for f in free),
        )
        for size in GANG_SIZES
    ]


def idle_devices(nodes: Sequence[NodeCapacity], resource: str = GPU) -> dict[str, int]:
    """Node -> devices nobody requested (allocatable minus requested): capacity paid for and not used."""
    return {n.name: int(n.free(resource)) for n in nodes if n.free(resource) > 0}


def bottlenecks(rows: Sequence[PoolRow], *, threshold: float = 0.9) -> list[str]:
    """Pools whose requests use at least ``threshold`` of a resource: where the next pod will not fit."""
    return [
        f"pool {r.pool}: {r.resource} {r.requested_share:.0%} requested ({r.requested:g} of {r.allocatable:g})"
        for r in rows
        if r.requested_share >= threshold
    ]


__all__ = [
    "GANG_SIZES",
    "RESOURCES",
    "Fragmentation",
    "NodeCapacity",
    "PoolRow",
    "bottlenecks",
    "fragmentation",
    "idle_devices",
    "node_capacities",
    "pod_requests",
    "pool_of",
    "pool_rows",
]
