"""Accelerator metrics (CNCF AI conformance ``accelerator_metrics``): is every GPU visible to monitoring, and can a
pod's GPU use be attributed to the pod?

Pure functions over :class:`~harness.cluster.prometheus.Series`, whether they came from a Prometheus query or from
dcgm-exporter's own ``/metrics`` (read through the API server's service proxy when a cluster has no Prometheus).
Each function returns the problems it found as sentences; an empty list is a pass, and "no series at all" is
always a problem, never a pass.

Label conventions handled (all seen in dcgm-exporter releases and their issues):
- the node: ``Hostname`` (the exporter sets it from ``NODE_NAME``), else ``node`` / ``kubernetes_node`` added by
  relabelling, else the host part of ``instance``;
- the pod: ``pod``/``namespace``/``container`` (2.x+), ``pod_name``/``container_name`` (1.x), and Prometheus'
  ``exported_pod``/``exported_namespace``/``exported_container`` when the scrape job does not honour labels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.cluster.prometheus import Series

UTIL = "DCGM_FI_DEV_GPU_UTIL"
FB_USED = "DCGM_FI_DEV_FB_USED"
POWER = "DCGM_FI_DEV_POWER_USAGE"
TEMP = "DCGM_FI_DEV_GPU_TEMP"
XID = "DCGM_FI_DEV_XID_ERRORS"
#: what dcgm-exporter's default counters file (default-counters.csv) exports and every GPU node must show
REQUIRED_METRICS: tuple[str, ...] = (UTIL, FB_USED, POWER, TEMP, XID)
PROFILING_PREFIX = "DCGM_FI_PROF_"
_NODE_LABELS = ("Hostname", "node", "kubernetes_node")
_POD_KEYS: Mapping[str, tuple[str, ...]] = {
    "pod": ("pod", "exported_pod", "pod_name"),
    "namespace": ("namespace", "exported_namespace", "pod_namespace"),
    "container": ("container", "exported_container", "container_name"),
}
ATTRIBUTION_HINT = (
    "dcgm-exporter maps GPUs to pods through the kubelet pod-resources socket: mount "
    "/var/lib/kubelet/pod-resources into the exporter and keep DCGM_EXPORTER_KUBERNETES=true (the GPU Operator does "
    "both); with time-slicing or MIG also set the matching --kubernetes-gpu-id-type"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeCoverage:
    """What monitoring shows of one GPU node: how many GPUs it reports and which required metrics are absent."""

    node: str
    gpus_allocatable: int
    gpus_reported: int
    missing: tuple[str, ...]


def node_of(series: Series) -> str:
    for key in _NODE_LABELS:
        if value := series.labels.get(key):
            return value
    instance = series.labels.get("instance", "")
    return instance.rsplit(":", 1)[0] if instance else ""


def pod_labels(series: Series) -> dict[str, str]:
    """The pod identity a series carries (empty values when the exporter attached none)."""
    found: dict[str, str] = {}
    for field, keys in _POD_KEYS.items():
        found[field] = next((series.labels[k] for k in keys if series.labels.get(k)), "")
    return found


def coverage(series: Sequence[Series], gpu_nodes: Mapping[str, int]) -> list[NodeCoverage]:
    """Per GPU node (name -> allocatable GPUs): the GPUs seen in ``DCGM_FI_DEV_GPU_UTIL`` and the missing metrics."""
    seen: dict[str, set[str]] = defaultdict(set)
    gpus: dict[str, set[str]] = defaultdict(set)
    for s in series:
        node = node_of(s)
        seen[node].add(s.name)
        if s.name == UTIL:
            gpus[node].add(s.labels.get("UUID") or s.labels.get("gpu") or s.labels.get("device", ""))
    return [
        NodeCoverage(
            node=node,
            gpus_allocatable=count,
            gpus_reported=len(gpus.get(node, ())),
            missing=tuple(m for m in REQUIRED_METRICS if m not in seen.get(node, set())),
        )
        for node, count in sorted(gpu_nodes.items())
    ]


def coverage_problems(nodes: Sequence[NodeCoverage]) -> list[str]:
    problems = []
    for n in nodes:
        if len(n.missing) == len(REQUIRED_METRICS):
            problems.append(f"node {n.node}: no DCGM metrics at all (is dcgm-exporter scheduled on it?)")
            continue
        if n.missing:
            problems.append(f"node {n.node}: missing {', '.join(n.missing)}")
        if n.gpus_reported < n.gpus_allocatable:
            problems.append(
                f"node {n.node}: {UTIL} reports {n.gpus_reported} GPU(s), the node has {n.gpus_allocatable} allocatable"
            )
    return problems


def attribution_problems(series: Sequence[Series], *, namespace: str, pod: str, container: str) -> list[str]:
    """The test pod's GPU series must carry its pod, namespace and container: the most common dcgm-exporter gap."""
    util = [s for s in series if s.name == UTIL]
    if not util:
        return [f"no {UTIL} series at all"]
    mine = [s for s in util if pod_labels(s)["pod"] == pod and pod_labels(s)["namespace"] == namespace]
    if not mine:
        attributed = sum(1 for s in util if pod_labels(s)["pod"])
        if attributed == 0:
            return [f"none of the {len(util)} {UTIL} series carries pod/namespace/container labels; {ATTRIBUTION_HINT}"]
        return [f"no {UTIL} series carries pod={pod} namespace={namespace} ({attributed} series name other pods)"]
    wrong = sorted({pod_labels(s)["container"] for s in mine} - {container})
    if wrong:
        return [f"{UTIL} of pod {namespace}/{pod} names container(s) {', '.join(wrong)}, expected {container}"]
    return []


def profiling_metrics(series: Sequence[Series]) -> tuple[str, ...]:
    """The DCP profiling metrics exported (``DCGM_FI_PROF_*``); empty on GPUs or configurations without DCP."""
    return tuple(sorted({s.name for s in series if s.name.startswith(PROFILING_PREFIX)}))


def xid_problems(series: Sequence[Series]) -> list[str]:
    """A non-zero ``DCGM_FI_DEV_XID_ERRORS`` is the last XID a GPU raised: a hardware or driver fault to look at."""
    return [
        f"node {node_of(s)} GPU {s.labels.get('gpu', '?')} ({s.labels.get('UUID', '?')}): last XID error {s.value:g}"
        for s in series
        if s.name == XID and s.value != 0
    ]


def utilisation_problems(
    *, idle_before: float, under_load: float, idle_after: float, min_rise_pct: float = 20.0
) -> list[str]:
    """Utilisation must rise while the test pod loads the GPU and fall back after: metrics that do not move
    with the load are stale or attributed to the wrong GPU."""
    problems = []
    if under_load - idle_before < min_rise_pct:
        problems.append(
            f"{UTIL} rose from {idle_before:.0f} % to only {under_load:.0f} % under load (expected +{min_rise_pct:.0f})"
        )
    if under_load - idle_after < min_rise_pct:
        problems.append(f"{UTIL} stayed at {idle_after:.0f} % after the load ended (was {under_load:.0f} % during it)")
    return problems


__all__ = [
    "ATTRIBUTION_HINT",
    "REQUIRED_METRICS",
    "NodeCoverage",
    "attribution_problems",
    "coverage",
    "coverage_problems",
    "node_of",
    "pod_labels",
    "profiling_metrics",
    "utilisation_problems",
    "xid_problems",
]
