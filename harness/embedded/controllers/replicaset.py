"""apps/v1 ReplicaSet controller: keeps ``spec.replicas`` active pods, created from the template.

Scale-down removes the least useful pods first, in kube's order: unscheduled before scheduled, pending before
running, not ready before ready, then the newest. Adoption of matching orphan pods is not done (pods here are
created by controllers that set owner references, or by users who do not expect adoption in a benchmark).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from harness.embedded.controllers.base import (
    PODS,
    ControllerContext,
    pod_active,
    pod_phase,
    pod_ready,
    primary_and_owned,
)
from harness.embedded.objects import parse_time
from harness.embedded.store import Key, WatchEvent

log = logging.getLogger(__name__)

REPLICASETS: Key = ("apps", "replicasets")
COMPONENT = "replicaset-controller"


def pod_available(pod: dict[str, Any], min_ready_s: int, now: float | None = None) -> bool:
    """Ready for at least ``minReadySeconds`` (kube's availability rule)."""
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            if min_ready_s <= 0:
                return True
            since = cond.get("lastTransitionTime")
            if not since or now is None:
                return False
            return parse_time(since).timestamp() + min_ready_s <= now
    return False


def deletion_rank(pod: dict[str, Any]) -> tuple[int, int, int]:
    """Sort key, lowest deleted first: unscheduled, then pending, then not ready."""
    scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(pod_phase(pod), 2)
    return (scheduled, phase_rank, 1 if pod_ready(pod) else 0)


class ReplicaSetController:
    name = "replicaset"
    primary: Key = REPLICASETS
    kind = "ReplicaSet"
    watches: tuple[Key, ...] = (REPLICASETS, PODS)

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx

    def work_for(self, event: WatchEvent) -> list[tuple[str, str]]:
        return primary_and_owned(event, self.primary, self.kind, self.ctx.store)

    def resync(self) -> list[tuple[str, str]]:
        return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in self.ctx.store.iter(self.primary)]

    def reconcile(self, namespace: str, name: str) -> float | None:
        rs = self.ctx.store.find(self.primary, namespace, name)
        if rs is None:
            return None
        spec = rs.get("spec") or {}
        pods = self.ctx.owned(rs, "Pod")
        active = [p for p in pods if pod_active(p)]
        wanted = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
        if not rs["metadata"].get("deletionTimestamp"):
            if len(active) < wanted:
                template = spec.get("template") or {}
                for _ in range(wanted - len(active)):
                    pod = self.ctx.create_pod(rs, template, component=COMPONENT, generate_name=f"{name}-")
                    if pod is None:
                        break
                    active.append(pod)
            elif len(active) > wanted:
                victims = _newest_first_within(active)[: len(active) - wanted]
                for pod in victims:
                    if self.ctx.delete_pod(rs, pod, component=COMPONENT):
                        active.remove(pod)
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = time.time()
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        fully_labeled = sum(
            1 for p in active if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
        )
        new_status: dict[str, Any] = {
            "replicas": len(active),
            "fullyLabeledReplicas": fully_labeled,
            "readyReplicas": sum(1 for p in active if pod_ready(p)),
            "availableReplicas": sum(1 for p in active if pod_available(p, min_ready, now)),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        # kube omits zero counters (omitempty) except replicas.
        for key in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            if not new_status[key]:
                del new_status[key]
        old = rs.get("status") or {}
        if old.get("conditions"):
            new_status["conditions"] = old["conditions"]
        if old != new_status:

            def change(obj: dict[str, Any]) -> bool:
                if obj.get("status") == new_status:
                    return False
                obj["status"] = new_status
                return True

            self.ctx.store.mutate(self.ctx.rtype(self.primary), namespace, name, change, subresource="status")
        if min_ready > 0 and any(pod_ready(p) and not pod_available(p, min_ready, now) for p in active):
            return float(min_ready)
        return None


def _newest_first_within(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order pods for deletion: by :func:`deletion_rank`, and newest first inside each rank (kube's rule)."""
    groups: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
    for pod in pods:
        groups.setdefault(deletion_rank(pod), []).append(pod)
    out: list[dict[str, Any]] = []
    for key in sorted(groups):
        out.extend(sorted(groups[key], key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True))
    return out


class ReplicationControllerController(ReplicaSetController):
    """v1 ReplicationController: the ReplicaSet's reconcile (its selector is a plain label map, defaulted from
    the template's labels, but pods are found through owner references either way)."""

    name = "replicationcontroller"
    primary: Key = ("", "replicationcontrollers")
    kind = "ReplicationController"
    watches: tuple[Key, ...] = (("", "replicationcontrollers"), PODS)
