"""Run-to-condition workloads whose top object is an operator's custom resource (MPIJob, JobSet...).

They all go the same way: apply (with the run labels pushed into the pod templates the operator copies), wait
until every object has its success condition, fail at once on its failure condition or on a pod that can never
start, then read every pod's log. What differs is data: the resource, the condition names, where the pod templates
are, and which log lines explain a failure; :class:`ConditionResource` carries it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from harness.catalog.render import Rendered
from harness.cluster.collect import Evidence, pod_phases
from harness.errors import WorkloadFailed
from harness.runners.failures import pod_blocker
from harness.runners.skeleton import Launch


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The ``status.conditions`` entry of type ``kind`` when it is True."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def custom_object(obj: object) -> dict[str, Any]:
    """A custom object as the API returned it (the client types it ``object``; it is a JSON object)."""
    if not isinstance(obj, dict):
        raise WorkloadFailed(f"the API server returned {type(obj).__name__} for a custom object, not a JSON object")
    return obj


def _no_explanation(_evidence: Evidence) -> str:
    return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionResource:
    """How to run one kind of custom resource to its success condition (a :class:`~harness.runners.skeleton.Runner`)."""

    kind: str
    group: str
    version: str
    plural: str
    succeeded: str  # the condition type that means done
    failed: str = "Failed"
    #: the rendered documents with the run labels added to every pod template the operator will copy
    label_pods: Callable[[Rendered, Mapping[str, str]], Rendered]
    #: extra words for a failure message from the evidence (a launcher's last lines...); "" for none
    explain: Callable[[Evidence], str] = _no_explanation

    @property
    def noun(self) -> str:
        return f"{self.kind} workload"

    def prepare(self, rendered: Rendered, labels: Mapping[str, str]) -> Rendered:
        return self.label_pods(rendered, labels)

    def watch(self, launch: Launch) -> _ConditionWatch:
        return _ConditionWatch(self, launch)


@dataclass(slots=True)
class _State:
    kind: str
    objects: list[dict[str, Any]]
    pods: list[client.V1Pod]

    def describe(self) -> str:
        parts = []
        for obj in self.objects:
            conditions = [
                c.get("type") for c in (obj.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
            ]
            seen = ", ".join(conditions) or "no condition yet"
            parts.append(f"{self.kind.lower()} {obj['metadata']['name']}: {seen}")
        parts.append("pods: " + pod_phases(self.pods))
        return "; ".join(parts)


class _ConditionWatch:
    """Every ``resource.kind`` object to its success condition; its failure condition or a blocked pod ends it."""

    def __init__(self, resource: ConditionResource, launch: Launch) -> None:
        self.resource = resource
        self.launch = launch
        self.names = launch.names(resource.kind)
        if not self.names:
            raise WorkloadFailed(f"workload {launch.spec.name}: its manifests define no {resource.kind}")
        self.custom = client.CustomObjectsApi(launch.api_client)
        self.core = client.CoreV1Api(launch.api_client)
        self.awaited = f"{resource.kind} workload {launch.spec.name} to reach {resource.succeeded}"
        self.evidence_selector = launch.selector

    def probe(self) -> _State:
        r, namespace = self.resource, self.launch.namespace
        objects = [
            custom_object(self.custom.get_namespaced_custom_object(r.group, r.version, namespace, r.plural, n))
            for n in self.names
        ]
        pods = self.core.list_namespaced_pod(namespace, label_selector=self.launch.selector).items
        return _State(kind=r.kind, objects=objects, pods=pods)

    def done(self, state: _State) -> bool:
        return all(condition(o, self.resource.succeeded) for o in state.objects)

    def impossible(self, state: _State) -> str | None:
        for obj in state.objects:
            if cond := condition(obj, self.resource.failed):
                return (
                    f"{self.resource.kind.lower()} {obj['metadata']['name']} failed: "
                    f"{cond.get('reason')}: {cond.get('message')}"
                )
        return pod_blocker(state.pods)

    def explain(self, evidence: Evidence, logs: Callable[[], dict[str, str]]) -> str:
        return self.resource.explain(evidence)


__all__ = ["ConditionResource", "condition", "custom_object"]
