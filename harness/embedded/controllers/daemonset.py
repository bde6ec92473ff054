"""apps/v1 DaemonSet controller: one pod per eligible node, pinned like kube does it.

A node is eligible when the template's ``nodeSelector`` and required node affinity match it and every NoSchedule /
NoExecute taint is tolerated by the template's tolerations plus the ones kube adds to every DaemonSet pod
(``node.kubernetes.io/*``: not-ready, unreachable, pressure conditions, unschedulable). Pods are pinned with a
required ``matchFields metadata.name`` node affinity (kube's ``ReplaceDaemonSetPodNodeNameNodeAffinity``) and left
for the scheduler to bind. Template changes roll one node at a time (``maxUnavailable`` honoured, ``maxSurge`` not);
pods are told apart by a ``controller-revision-hash`` label, a digest of the template rather than a
ControllerRevision object. A failed daemon pod is deleted (and so replaced) with kube's ``failedPodsBackoff``:
1 s doubling to 15 min per DaemonSet generation and node, with a FailedDaemonPod warning each time.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from harness.embedded.controllers.base import NODES, PODS, REVISION_LABEL, ControllerContext, PrimaryController
from harness.embedded.controllers.deployment import resolve_int_or_percent, template_hash
from harness.embedded.controllers.ratelimit import Backoff, Clock
from harness.embedded.objects import clone
from harness.embedded.podstate import pod_active, pod_phase, pod_ready
from harness.embedded.store import Key, WatchEvent

log = logging.getLogger(__name__)

DAEMONSETS: Key = ("apps", "daemonsets")
COMPONENT = "daemonset-controller"

DEFAULT_TOLERATIONS: tuple[dict[str, Any], ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATION = {
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
    "effect": "NoSchedule",
}


def daemon_tolerations(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's tolerations plus kube's DaemonSet defaults (not duplicated)."""
    tolerations = [dict(t) for t in pod_spec.get("tolerations") or ()]
    extra = list(DEFAULT_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        extra.append(HOST_NETWORK_TOLERATION)
    for tol in extra:
        if not any(t.get("key") == tol["key"] and t.get("effect") == tol["effect"] for t in tolerations):
            tolerations.append(dict(tol))
    return tolerations


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    operator = toleration.get("operator", "Equal")
    if not toleration.get("key"):
        return bool(operator == "Exists")
    if toleration["key"] != taint.get("key"):
        return False
    return bool(operator == "Exists" or toleration.get("value", "") == taint.get("value", ""))


def _expression_matches(expr: dict[str, Any], value: str | None) -> bool:
    operator = expr.get("operator")
    values = [str(v) for v in expr.get("values") or ()]
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and values:
        try:
            return int(value) > int(values[0]) if operator == "Gt" else int(value) < int(values[0])
        except ValueError:
            return False
    return False


def node_eligible(pod_spec: dict[str, Any], node: dict[str, Any]) -> bool:
    """Would a DaemonSet pod with ``pod_spec`` belong on ``node`` (selector, required affinity, taints)?"""
    labels = node["metadata"].get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms:
        fields = {"metadata.name": node["metadata"]["name"]}
        if not any(
            all(_expression_matches(e, labels.get(e.get("key", ""))) for e in term.get("matchExpressions") or ())
            and all(_expression_matches(e, fields.get(e.get("key", ""))) for e in term.get("matchFields") or ())
            and (term.get("matchExpressions") or term.get("matchFields"))
            for term in terms
        ):
            return False
    tolerations = daemon_tolerations(pod_spec)
    for taint in (node.get("spec") or {}).get("taints") or ():
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return False
    return True


def target_node(pod: dict[str, Any]) -> str | None:
    """The node a DaemonSet pod is pinned to (its matchFields term), or where it runs."""
    spec = pod.get("spec") or {}
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or ():
        for expr in term.get("matchFields") or ():
            if expr.get("key") == "metadata.name" and expr.get("operator") == "In" and expr.get("values"):
                return str(expr["values"][0])
    return spec.get("nodeName")


def _pin(pod: dict[str, Any], node_name: str) -> None:
    spec = pod["spec"]
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]
    }
    spec["tolerations"] = daemon_tolerations(spec)


class DaemonSetController(PrimaryController):
    name = "daemonset"
    primary: Key = DAEMONSETS
    kind = "DaemonSet"
    watches: tuple[Key, ...] = (DAEMONSETS, PODS, NODES)

    def __init__(self, ctx: ControllerContext, clock: Clock = time.monotonic) -> None:
        super().__init__(ctx)
        self._clock = clock
        self._failed_pods_backoff = Backoff(clock=clock)

    def work_for(self, event: WatchEvent) -> list[tuple[str, str]]:
        if event.key == NODES:
            if (
                event.type == "MODIFIED"
                and event.prev is not None
                and (
                    event.prev["metadata"].get("labels") == event.obj["metadata"].get("labels")
                    and (event.prev.get("spec") or {}).get("taints") == (event.obj.get("spec") or {}).get("taints")
                )
            ):
                return []  # status heartbeats do not change eligibility
            return self.resync()
        return super().work_for(event)

    def sync(self, namespace: str, name: str, ds: dict[str, Any]) -> float | None:
        store = self.ctx.store
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        pod_spec = template.get("spec") or {}
        revision = template_hash(template)
        nodes = {n["metadata"]["name"]: n for n in store.iter(NODES) if not n["metadata"].get("deletionTimestamp")}
        eligible = {nname for nname, node in nodes.items() if node_eligible(pod_spec, node)}
        by_node: dict[str, list[dict[str, Any]]] = {}
        # Nodes whose failed daemon pod is still there: no new pod until it is deleted, after its back-off.
        failed_nodes: set[str] = set()
        again: float | None = None
        now = self._clock()
        self._failed_pods_backoff.gc(now)
        pod: dict[str, Any] | None
        for pod in self.ctx.owned(ds, "Pod"):
            if pod_phase(pod) == "Failed" and not pod["metadata"].get("deletionTimestamp"):
                node_name = target_node(pod) or ""
                failed_nodes.add(node_name)
                delay = self._replace_failed(ds, pod, node_name, now)
                if delay is not None:
                    again = delay if again is None else min(again, delay)
                continue
            if pod_active(pod):
                by_node.setdefault(target_node(pod) or "", []).append(pod)
        deleting = bool(ds["metadata"].get("deletionTimestamp"))
        for node_name, pods in list(by_node.items()):
            keep = 1 if node_name in eligible and not deleting else 0
            ordered = sorted(pods, key=lambda p: (not pod_ready(p), p["metadata"].get("creationTimestamp", "")))
            for pod in ordered[keep:]:
                self.ctx.delete_pod(ds, pod, component=COMPONENT)
            by_node[node_name] = ordered[:keep]
        if not deleting:
            for node_name in sorted(eligible):
                if by_node.get(node_name) or node_name in failed_nodes:
                    continue
                pod = self.ctx.create_pod(
                    ds,
                    template,
                    component=COMPONENT,
                    generate_name=f"{name}-",
                    extra_labels={
                        REVISION_LABEL: revision,
                        "pod-template-generation": str(ds["metadata"].get("generation", 1)),
                    },
                    customize=functools.partial(_pin, node_name=node_name),
                )
                if pod is not None:
                    by_node[node_name] = [pod]
            self._roll(ds, by_node, eligible, revision)
        current = [pods[0] for nname, pods in by_node.items() if pods and nname in eligible]
        status: dict[str, Any] = {
            "currentNumberScheduled": len(current),
            "desiredNumberScheduled": len(eligible),
            "numberMisscheduled": sum(1 for nname, pods in by_node.items() if pods and nname not in eligible),
            "numberReady": sum(1 for p in current if pod_ready(p)),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        available = status["numberReady"]
        updated = sum(1 for p in current if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision)
        for key, value in (
            ("numberAvailable", available),
            ("numberUnavailable", len(eligible) - available),
            ("updatedNumberScheduled", updated),
        ):
            if value > 0:
                status[key] = value
        if (ds.get("status") or {}) != status:

            def change(obj: dict[str, Any]) -> bool:
                if obj.get("status") == status:
                    return False
                obj["status"] = clone(status)
                return True

            store.mutate(self.ctx.rtype(DAEMONSETS), namespace, name, change, subresource="status")
        return again

    def _replace_failed(self, ds: dict[str, Any], pod: dict[str, Any], node_name: str, now: float) -> float | None:
        """kube's failedPodsBackoff: delete a failed daemon pod (so that it is recreated) only once the back-off of
        this DaemonSet generation on this node has passed (1 s doubling to 15 min); else look again after it."""
        meta = ds["metadata"]
        key = (meta.get("uid", ""), (ds.get("status") or {}).get("observedGeneration", 0), node_name)
        backoff = self._failed_pods_backoff
        if backoff.in_backoff_since_update(key, now):
            return backoff.get(key)
        backoff.next(key, now)
        pmeta = pod["metadata"]
        self.ctx.event(
            ds,
            "FailedDaemonPod",
            f"Found failed daemon pod {pmeta.get('namespace', '')}/{pmeta['name']} on node {node_name}, "
            "will try to kill it",
            component=COMPONENT,
            type_="Warning",
        )
        self.ctx.delete_pod(ds, pod, component=COMPONENT)
        return None

    def _roll(
        self, ds: dict[str, Any], by_node: dict[str, list[dict[str, Any]]], eligible: set[str], revision: str
    ) -> None:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        budget = max(
            1,
            resolve_int_or_percent(
                (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), len(eligible), round_up=False
            ),
        )
        pods = [ps[0] for n, ps in by_node.items() if ps and n in eligible]
        unavailable = len(eligible) - sum(1 for p in pods if pod_ready(p))
        outdated = [p for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision]
        outdated.sort(key=pod_ready)  # not-ready ones cost no availability
        for pod in outdated:
            if not pod_ready(pod):
                self.ctx.delete_pod(ds, pod, component=COMPONENT)
            elif unavailable < budget and self.ctx.delete_pod(ds, pod, component=COMPONENT):
                unavailable += 1
