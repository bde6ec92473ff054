"""policy/v1 PodDisruptionBudget status, as kube's disruption controller computes it.

``expectedPods`` counts the pods the selector matches in the namespace (kube counts the scale of their
controllers; for the workloads here, which keep exactly their replicas, that is the same number), ``currentHealthy``
the Ready ones, ``desiredHealthy`` follows ``minAvailable`` or ``maxUnavailable`` (an integer or a percentage of
expected pods, rounded up), and ``disruptionsAllowed`` is the difference, never negative. The
``DisruptionAllowed`` condition says why. The eviction subresource (:mod:`harness.embedded.apiserver`) consults
the same status and refuses an eviction that would violate a budget with kube's 429.
"""

from __future__ import annotations

import math
from typing import Any

from harness.embedded.controllers.base import PODS, PrimaryController
from harness.embedded.objects import rfc3339
from harness.embedded.podstate import pod_ready, pod_terminal
from harness.embedded.selectors import SelectorError, label_selector_from_object
from harness.embedded.store import Key, WatchEvent

PDBS: Key = ("policy", "poddisruptionbudgets")


def matching_budgets(store: Any, pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The budgets whose selector matches ``pod`` (policy/v1: an empty selector matches every pod of the
    namespace, a null one none)."""
    labels = pod["metadata"].get("labels") or {}
    out = []
    for pdb in store.iter(PDBS, pod["metadata"].get("namespace", "")):
        try:
            selector = label_selector_from_object((pdb.get("spec") or {}).get("selector"))
        except SelectorError:
            continue
        if selector.matches(labels):
            out.append(pdb)
    return out


def _scaled(value: Any, expected: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(expected * int(value[:-1]) / 100)
    return int(value)


def budget_status(pdb: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The status kube's disruption controller writes for these (selected, non-terminal) pods."""
    spec = pdb.get("spec") or {}
    expected = len(pods)
    healthy = sum(1 for p in pods if pod_ready(p) and not p["metadata"].get("deletionTimestamp"))
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
    elif spec.get("minAvailable") is not None:
        desired = _scaled(spec["minAvailable"], expected)
    else:
        desired = 0  # neither set: kube's getExpectedPodCount leaves desiredHealthy at 0
    allowed = max(0, healthy - desired)
    old = pdb.get("status") or {}
    previous = next((c for c in old.get("conditions") or () if c.get("type") == "DisruptionAllowed"), None)
    status_text = "True" if allowed > 0 else "False"
    reason = "SufficientPods" if allowed > 0 else "InsufficientPods"
    since = previous["lastTransitionTime"] if previous and previous.get("status") == status_text else rfc3339()
    return {
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": status_text,
                "reason": reason,
                "message": "",
                "observedGeneration": pdb["metadata"].get("generation", 1),
                "lastTransitionTime": since,
            }
        ],
    }


class DisruptionController(PrimaryController):
    name = "disruption"
    primary: Key = PDBS
    watches: tuple[Key, ...] = (PDBS, PODS)

    def work_for(self, event: WatchEvent) -> list[tuple[str, str]]:
        meta = event.obj["metadata"]
        if event.key == PDBS:
            return [] if event.type == "DELETED" else [(meta.get("namespace", ""), meta["name"])]
        found = {
            (p["metadata"]["namespace"], p["metadata"]["name"]) for p in matching_budgets(self.ctx.store, event.obj)
        }
        if event.prev is not None:
            found |= {
                (p["metadata"]["namespace"], p["metadata"]["name"])
                for p in matching_budgets(self.ctx.store, event.prev)
            }
        return sorted(found)

    def sync(self, namespace: str, name: str, pdb: dict[str, Any]) -> float | None:
        try:
            selector = label_selector_from_object((pdb.get("spec") or {}).get("selector"))
        except SelectorError:
            return None
        pods = [
            p
            for p in self.ctx.store.iter(PODS, namespace)
            if selector.matches(p["metadata"].get("labels") or {}) and not pod_terminal(p)
        ]
        status = budget_status(pdb, pods)
        if status == pdb.get("status"):
            return None

        def change(obj: dict[str, Any]) -> bool:
            obj["status"] = status
            return True

        self.ctx.store.mutate(self.ctx.rtype(PDBS), namespace, name, change, subresource="status")
        return None
