"""Label and annotation keys that both sides of the API share: what the embedded target and the node agent write,
and what the cluster layer reads back during discovery.

Why a module of its own: the cluster layer must read these keys without importing the embedded target or the pod
network that write them (``harness.cluster`` only talks to clusters; the import-graph test forbids
``cluster -> embedded``), and one definition keeps writer and reader from drifting apart.
"""

from __future__ import annotations

__all__ = ["EMULATED", "POD_NETWORK_ANNOTATION", "SYSTEM_SERVICE_LABEL"]

#: Marks nodes (label) and pods (annotation) that run on emulated hardware: their numbers are never measurements.
EMULATED = "aibench.io/emulated"

#: Label on a system Service of the embedded target (its S3, Redis, Prometheus...): the value is the service name.
SYSTEM_SERVICE_LABEL = "aibench.io/system-service"

#: Node annotation the node agent writes: the pod network's mode (``netns`` or ``host``), provider and reason, JSON.
POD_NETWORK_ANNOTATION = "aibench.io/pod-network"
