"""What a pod's status says about it: its phase, readiness, and whether it still counts.

These predicates read only the pod object, so the scheduler, the binder, every controller, the kubelet and the API
server's eviction check share one reading of "ready", "finished" and "being deleted" instead of each deciding on
its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def pod_ready(pod: Mapping[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def pod_phase(pod: Mapping[str, Any]) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def pod_terminal(pod: Mapping[str, Any]) -> bool:
    return pod_phase(pod) in ("Succeeded", "Failed")


def pod_active(pod: Mapping[str, Any]) -> bool:
    """Counts toward a controller's replicas: neither finished nor being deleted."""
    return not pod_terminal(pod) and not pod["metadata"].get("deletionTimestamp")


def pod_terminating(pod: Mapping[str, Any]) -> bool:
    return not pod_terminal(pod) and bool(pod["metadata"].get("deletionTimestamp"))
