"""apps/v1 ReplicaSet controller: keeps ``spec.replicas`` active pods, created from the template.

Scale-down removes the least useful pods first, in kube's order: unscheduled before scheduled, pending before
running, not ready before ready, then the newest. Adoption of matching orphan pods is not done (pods here are
created by controllers that set owner references, or by users who do not expect adoption in a benchmark).

Creates go in slow-start batches (1, 2, 4...; at most ``burstReplicas`` = 500 per sync) as kube's do. Replacing
pods that *failed* (phase Failed: activeDeadlineSeconds, a kubelet rejection) is rate-limited per ReplicaSet with
client-go's default controller rate limiter (5 ms doubling to 1000 s, plus a 10/s burst-100 bucket), reset once
every replica is ready. kube applies that limiter only when a sync errors, and its own replacement storm is bounded
by the controller-manager's client QPS; here a replacement for a failed pod counts as such a failure, so a pod that
fails at once costs a dozen pods a minute, not thousands (benchmarks/test_controller_storm.py measures it).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from harness.embedded.controllers.base import PODS, ControllerContext, PrimaryController
from harness.embedded.controllers.ratelimit import Clock, ControllerRateLimiter, slow_start_batch
from harness.embedded.objects import parse_time
from harness.embedded.podstate import pod_active, pod_phase, pod_ready
from harness.embedded.store import Key

log = logging.getLogger(__name__)

REPLICASETS: Key = ("apps", "replicasets")
COMPONENT = "replicaset-controller"
BURST_REPLICAS = 500  # kube's cap on creates or deletes in one sync


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


class ReplicaSetController(PrimaryController):
    name = "replicaset"
    primary: Key = REPLICASETS
    kind = "ReplicaSet"
    watches: tuple[Key, ...] = (REPLICASETS, PODS)

    def __init__(self, ctx: ControllerContext, clock: Clock = time.monotonic) -> None:
        super().__init__(ctx)
        self._clock = clock
        self._limiter = ControllerRateLimiter(clock)
        self._not_before: dict[tuple[str, str], float] = {}

    def primary_gone(self, namespace: str, name: str) -> None:
        self._forget_failures((namespace, name))

    def _forget_failures(self, rs_key: tuple[str, str]) -> None:
        """Start the failed-pod back-off of this ReplicaSet over (kube: queue.Forget)."""
        self._limiter.forget(rs_key)
        self._not_before.pop(rs_key, None)

    def sync(self, namespace: str, name: str, rs: dict[str, Any]) -> float | None:
        spec = rs.get("spec") or {}
        pods = self.ctx.owned(rs, "Pod")
        active = [p for p in pods if pod_active(p)]
        wanted = int(spec["replicas"] if spec.get("replicas") is not None else 1)
        again: float | None = None
        if not rs["metadata"].get("deletionTimestamp"):
            if len(active) < wanted:
                again = self._create(rs, pods, active, wanted - len(active))
            elif len(active) > wanted:
                victims = _newest_first_within(active)[: min(len(active) - wanted, BURST_REPLICAS)]
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
        if len(active) == wanted and all(pod_ready(p) for p in active):
            self._forget_failures((namespace, name))  # a healthy ReplicaSet starts its back-off over
        if min_ready > 0 and any(pod_ready(p) and not pod_available(p, min_ready, now) for p in active):
            again = float(min_ready) if again is None else min(again, float(min_ready))
        return again

    def _create(
        self, rs: dict[str, Any], pods: list[dict[str, Any]], active: list[dict[str, Any]], missing: int
    ) -> float | None:
        """Create up to ``missing`` pods; when failed pods are being replaced, only as the rate limiter allows.
        Returns when to look again (the end of the current back-off), or None."""
        meta = rs["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        replacing_failures = any(pod_phase(p) == "Failed" and not p["metadata"].get("deletionTimestamp") for p in pods)
        if replacing_failures:
            now = self._clock()
            not_before = self._not_before.get(key, 0.0)
            if now < not_before:
                log.debug("replicaset %s/%s: replacing failed pods in %.3fs", *key, not_before - now)
                return not_before - now
            self._not_before[key] = now + self._limiter.when(key)
        template = (rs.get("spec") or {}).get("template") or {}
        created = slow_start_batch(
            min(missing, BURST_REPLICAS),
            lambda: self.ctx.create_pod(rs, template, component=COMPONENT, generate_name=f"{meta['name']}-"),
        )
        active.extend(created)
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
