"""Build the capacity panel of a live target: read nodes and pods once, add Prometheus usage when there is one,
and turn it into measurements the report shows (with the data behind them as params).
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client

from harness.cluster.prometheus import Prometheus
from harness.cluster.target import ClusterHandle
from harness.measurement import Measurement
from harness.observability.capacity import (
    GPU,
    Fragmentation,
    NodeCapacity,
    PoolRow,
    bottlenecks,
    fragmentation,
    idle_devices,
    node_capacities,
    pool_rows,
)
from harness.observability.usage import measured_usage

_UNITS = {"cpu": ("cores", 1.0), "memory": ("GiB", 1024.0**3)}


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityPanel:
    nodes: tuple[NodeCapacity, ...]
    rows: tuple[PoolRow, ...]
    fragmentation: tuple[Fragmentation, ...]
    idle_gpus: dict[str, int]
    bottlenecks: tuple[str, ...]
    usage_source: str  # which Prometheus, or why there is no "used" column
    usage_gaps: tuple[str, ...]  # queries that returned no series

    def measurements(self) -> list[Measurement]:
        out = []
        for row in self.rows:
            unit, scale = _UNITS.get(row.resource, ("count", 1.0))
            amounts = {"allocatable": row.allocatable, "requested": row.requested, "used": row.used}
            for kind, amount in amounts.items():
                if amount is None:
                    continue
                out.append(
                    Measurement(
                        metric="capacity",
                        value=amount / scale,
                        unit=unit,
                        labels={"pool": row.pool, "resource": row.resource, "kind": kind, "nodes": str(row.nodes)},
                        emulated=all(n.emulated for n in self.nodes if n.pool == row.pool),
                    )
                )
        for frag in self.fragmentation:
            if frag.free:
                out.append(
                    Measurement(
                        metric="stranded_devices",
                        value=frag.stranded,
                        unit="count",
                        labels={"resource": frag.resource, "gang_size": str(frag.size), "fits": str(frag.fits)},
                    )
                )
        return out


def capacity_panel(cluster: ClusterHandle, prometheus: Prometheus | None) -> CapacityPanel:
    api_client = cluster.api_client
    core = client.CoreV1Api(api_client)
    nodes = [api_client.sanitize_for_serialization(n) for n in core.list_node().items]
    pods = [api_client.sanitize_for_serialization(p) for p in core.list_pod_for_all_namespaces().items]
    has_gpus = any(GPU in ((n.get("status") or {}).get("allocatable") or {}) for n in nodes)
    if prometheus is None:
        used: dict[str, dict[str, float]] = {}
        gaps: list[str] = []
        source = "no Prometheus: the panel shows allocatable and requested only"
    else:
        used, gaps = measured_usage(prometheus, with_gpus=has_gpus)
        source = prometheus.describe
    capacities = node_capacities(nodes, pods, used)
    rows = pool_rows(capacities)
    return CapacityPanel(
        nodes=tuple(capacities),
        rows=tuple(rows),
        fragmentation=tuple(fragmentation(capacities)) if has_gpus else (),
        idle_gpus=idle_devices(capacities),
        bottlenecks=tuple(bottlenecks(rows)),
        usage_source=source,
        usage_gaps=tuple(gaps),
    )


__all__ = ["CapacityPanel", "capacity_panel"]
