"""Measured use per node from Prometheus, for the capacity panel: CPU cores busy, memory bytes in use, GPUs busy.

node-exporter series are keyed by ``instance``; ``node_uname_info`` maps each instance to its ``nodename`` (the
node name on every managed Kubernetes we know of). dcgm-exporter names the node itself (``Hostname``).
"""

from __future__ import annotations

from collections import defaultdict

from harness.cluster.prometheus import FIRST_SAMPLE_S, Prometheus, QueryResult
from harness.observability.capacity import GPU
from harness.observability.gpu_metrics import node_of

CPU_BUSY = 'sum by (instance) (1 - rate(node_cpu_seconds_total{mode="idle"}[1m]))'
MEMORY_USED = "sum by (instance) (node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)"
GPU_BUSY = "sum by (Hostname) (DCGM_FI_DEV_GPU_UTIL) / 100"
UNAME = "node_uname_info"


def _by_node(result: QueryResult, nodename_of: dict[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for series in result.series:
        instance = series.labels.get("instance", "")
        node = nodename_of.get(instance) or instance.rsplit(":", 1)[0]
        if node:
            out[node] = out.get(node, 0.0) + series.value
    return out


def measured_usage(prometheus: Prometheus, *, with_gpus: bool) -> tuple[dict[str, dict[str, float]], list[str]]:
    """(node -> resource -> used amount, the queries that returned nothing). Missing data is reported, not
    guessed: a node without a value has no "used" figure in the panel."""
    empty: list[str] = []
    uname = prometheus.query_with_data(UNAME, within_s=FIRST_SAMPLE_S)
    nodename_of = {s.labels.get("instance", ""): s.labels.get("nodename", "") for s in uname.series}
    usage: dict[str, dict[str, float]] = defaultdict(dict)
    for resource, promql in (("cpu", CPU_BUSY), ("memory", MEMORY_USED)):
        result = prometheus.query_with_data(promql, within_s=FIRST_SAMPLE_S)
        if not result.series:
            empty.append(promql)
        for node, value in _by_node(result, nodename_of).items():
            usage[node][resource] = value
    if with_gpus:
        result = prometheus.query_with_data(GPU_BUSY, within_s=FIRST_SAMPLE_S)
        if not result.series:
            empty.append(GPU_BUSY)
        for series in result.series:
            usage[node_of(series)][GPU] = series.value
    return dict(usage), empty


__all__ = ["CPU_BUSY", "GPU_BUSY", "MEMORY_USED", "measured_usage"]
