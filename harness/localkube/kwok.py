"""Emulated nodes on the real control plane: the cluster spec's node pools as kwok-managed Nodes.

The same ``ClusterSpec`` file drives both control planes (DESIGN.md §4b). kwok keeps these nodes Ready (Lease
heartbeats) and moves their pods through kwok's own Stages, copied by the build from the kwok module: pods become
Running and Ready, pods owned by a Job complete, deleted pods go away. Nothing runs: every node carries
``aibench.io/emulated=true`` like the embedded target's emulated nodes, so results say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.embedded.clusterspec import ClusterSpec, emulated_nodes, parse_cluster_spec

__all__ = ["DEFAULT_SPEC", "EMULATED_POD_STAGE", "KWOK_ANNOTATION", "default_spec", "kwok_nodes"]

KWOK_ANNOTATION = "kwok.x-k8s.io/node"

DEFAULT_SPEC = """\
apiVersion: aibench.io/v1
kind: ClusterSpec
host: {include: true, labels: {topology.kubernetes.io/zone: z1}}  # beside the GPU pools, as one lab zone
nodePools:
  - name: h100
    count: 2
    capacity: {cpu: "192", memory: 2Ti, ephemeral-storage: 7Ti, nvidia.com/gpu: "8", rdma/ib: "8"}
    labels:
      nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3
      nvidia.com/gpu.memory: "81559"
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
    topology: {zone: z1, block: b1, rack: "r{i//2}"}
"""
"""Used when ``cluster up --control-plane real`` gets no ``--spec``: this machine as a real node (the node agent
runs its pods as processes) beside two emulated 8-GPU nodes, tainted as GPU Operator clusters taint them, so
CPU workloads land on the real node and GPU workloads on the emulated ones."""


EMULATED_POD_STAGE = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: aibench-emulated-pod
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.spec.nodeName'
      operator: 'Exists'
    - key: '.metadata.annotations["aibench.io/emulated"]'
      operator: 'DoesNotExist'
  weight: 1000
  next:
    patches:
    - type: merge
      root: metadata
      template: |
        annotations:
          aibench.io/emulated: "true"
"""
"""Our one Stage beside kwok's own: a pod bound to a kwok node is annotated ``aibench.io/emulated=true`` before
anything else happens to it, the mark the embedded target's kubelet puts on pods of its emulated nodes, so that
results and reports call whatever such a pod "produced" emulated on both control planes."""


def default_spec() -> ClusterSpec:
    return parse_cluster_spec(DEFAULT_SPEC, Path("<default real control-plane spec>"))


def kwok_nodes(spec: ClusterSpec, *, kubelet_ip: str = "127.0.0.1") -> list[dict[str, Any]]:
    """The spec's Node objects, marked for kwok to manage; capacity and labels are kept (kwok fills conditions and
    leases). Every node's InternalIP is ``kubelet_ip``, where kwok serves the kubelet API the API server proxies
    ``pods/log`` to (one kwok process stands in for every node's kubelet)."""
    nodes = emulated_nodes(spec)
    for node in nodes:
        node["metadata"].setdefault("annotations", {})[KWOK_ANNOTATION] = "fake"
        for key in ("uid", "resourceVersion", "creationTimestamp"):
            node["metadata"].pop(key, None)
        status = node.setdefault("status", {})
        status["addresses"] = [
            {"type": "InternalIP", "address": kubelet_ip},
            {"type": "Hostname", "address": node["metadata"]["name"]},
        ]
        status.pop("daemonEndpoints", None)  # kwok sets its own port
        status.pop("conditions", None)  # kwok reports them (Ready once it manages the node)
    return nodes
