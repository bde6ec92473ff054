"""autoscaling/v2 HorizontalPodAutoscaler: stored, its target's scale read, and no scaling invented.

The embedded target serves no metrics API (``metrics.k8s.io``, ``custom.metrics.k8s.io``, ``external.metrics``),
so no replica count can be computed. Rather than pretend, the status says so the way kube's controller reports a
missing metrics source: ``AbleToScale`` True (the target's scale was read; False with ``FailedGetScale`` when the
target does not exist), ``ScalingActive`` False with reason ``FailedGetResourceMetric`` (resource metrics) or
``FailedGetMetrics`` and a message naming the missing API; ``currentReplicas`` and ``desiredReplicas`` are the
target's current replicas, so nothing is ever scaled. A Warning event is recorded when that condition appears.
"""

from __future__ import annotations

from typing import Any

from harness.embedded.controllers.base import PrimaryController
from harness.embedded.objects import rfc3339
from harness.embedded.store import Key, WatchEvent

HPAS: Key = ("autoscaling", "horizontalpodautoscalers")
TARGETS: tuple[Key, ...] = (
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "replicasets"),
    ("", "replicationcontrollers"),
)
COMPONENT = "horizontal-pod-autoscaler"
NO_METRICS = (
    "the HPA was unable to compute the replica count: the embedded target serves no metrics API "
    "(metrics.k8s.io, custom.metrics.k8s.io, external.metrics.k8s.io): no scaling is done"
)


def _condition(old: list[dict[str, Any]], ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
    previous = next((c for c in old if c.get("type") == ctype), None)
    unchanged = previous is not None and previous.get("status") == status
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": previous["lastTransitionTime"] if unchanged and previous else rfc3339(),
    }


class HorizontalPodAutoscalerController(PrimaryController):
    name = "horizontalpodautoscaler"
    primary: Key = HPAS
    watches: tuple[Key, ...] = (HPAS, *TARGETS)

    def work_for(self, event: WatchEvent) -> list[tuple[str, str]]:
        meta = event.obj["metadata"]
        namespace = meta.get("namespace", "")
        if event.key == HPAS:
            return [] if event.type == "DELETED" else [(namespace, meta["name"])]
        return [
            (namespace, hpa["metadata"]["name"])
            for hpa in self.ctx.store.iter(HPAS, namespace)
            if (hpa.get("spec") or {}).get("scaleTargetRef", {}).get("name") == meta["name"]
            and (hpa.get("spec") or {}).get("scaleTargetRef", {}).get("kind") == event.obj.get("kind")
        ]

    def sync(self, namespace: str, name: str, hpa: dict[str, Any]) -> float | None:
        store = self.ctx.store
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        rtype = store.registry.for_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        target = store.find(rtype.key, namespace, ref.get("name", "")) if rtype is not None else None
        old = hpa.get("status") or {}
        old_conditions = old.get("conditions") or []
        status: dict[str, Any]
        if target is None or rtype is None or "scale" not in rtype.subresources:
            what = (
                f"{rtype.plural}.{rtype.group}"
                if rtype is not None and rtype.group
                else (rtype.plural if rtype else ref.get("kind", ""))
            )
            message = (
                "the HPA controller was unable to get the target's current scale: "
                f'{what} "{ref.get("name", "")}" not found'
            )
            status = {
                "currentReplicas": old.get("currentReplicas", 0),
                "desiredReplicas": old.get("desiredReplicas", 0),
                "conditions": [_condition(old_conditions, "AbleToScale", "False", "FailedGetScale", message)],
            }
            reason = "FailedGetScale"
            event_message = message
        else:
            replicas = int((target.get("status") or {}).get("replicas") or 0)
            metric_types = {m.get("type") for m in spec.get("metrics") or ()} or {"Resource"}
            reason = "FailedGetResourceMetric" if metric_types == {"Resource"} else "FailedGetMetrics"
            status = {
                "currentReplicas": replicas,
                "desiredReplicas": replicas,
                "conditions": [
                    _condition(
                        old_conditions,
                        "AbleToScale",
                        "True",
                        "SucceededGetScale",
                        "the HPA controller was able to get the target's current scale",
                    ),
                    _condition(old_conditions, "ScalingActive", "False", reason, NO_METRICS),
                ],
            }
            event_message = NO_METRICS
        if status == old:
            return None
        was = {c.get("type"): c.get("reason") for c in old_conditions}
        if reason not in was.values():
            self.ctx.event(hpa, reason, event_message, component=COMPONENT, type_="Warning")

        def change(obj: dict[str, Any]) -> bool:
            obj["status"] = status
            return True

        store.mutate(self.ctx.rtype(HPAS), namespace, name, change, subresource="status")
        return None
