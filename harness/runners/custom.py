"""Run-to-condition workloads whose top object is an operator's custom resource (MPIJob, JobSet...).

They all go the same way: apply (with the run labels pushed into the pod templates the operator copies), wait
until every object has its success condition, fail at once on its failure condition or on a pod that can never
start, then read every pod's log. What differs is data: the resource, the condition names, where the pod templates
are, and which log lines explain a failure; :class:`ConditionResource` carries it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from harness.catalog.render import Rendered
from harness.catalog.spec import WorkloadSpec
from harness.cluster.collect import Evidence, container_logs, gather, pod_phases, write_artifacts
from harness.cluster.manifests import Applier
from harness.cluster.wait import FailedWait, wait_for
from harness.errors import WaitTimeout, WorkloadFailed
from harness.runners.failures import pod_blocker
from harness.runners.job import RunResult, apply_workload

log = logging.getLogger(__name__)


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The ``status.conditions`` entry of type ``kind`` when it is True."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionResource:
    """How to run one kind of custom resource to its success condition."""

    kind: str
    group: str
    version: str
    plural: str
    succeeded: str  # the condition type that means done
    failed: str = "Failed"
    #: the rendered documents with the run labels added to every pod template the operator will copy
    label_pods: Callable[[Rendered, Mapping[str, str]], Rendered]
    #: extra words for a failure message from the evidence (a launcher's last lines...); "" for none
    explain: Callable[[Evidence], str] = lambda _evidence: ""


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


def run_to_condition(
    resource: ConditionResource,
    api_client: client.ApiClient,
    spec: WorkloadSpec,
    rendered: Rendered,
    *,
    namespace: str,
    labels: Mapping[str, str],
    timeout_s: float,
    artifacts_dir: Path | None = None,
    applier: Applier | None = None,
) -> RunResult:
    """Apply, wait for every ``resource.kind`` object's success condition, read logs; raise WorkloadFailed when it
    cannot succeed (failure condition, blocked pod, timeout), with ``resource.explain`` appended."""
    started = time.monotonic()
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    refs = apply_workload(
        api_client,
        spec,
        resource.label_pods(rendered, labels),
        namespace=namespace,
        labels=labels,
        artifacts_dir=artifacts_dir,
        applier=applier,
    )
    names = [r.name for r in refs if r.kind == resource.kind]
    if not names:
        raise WorkloadFailed(f"workload {spec.name}: its manifests define no {resource.kind}")
    selector = ",".join(f"{k}={v}" for k, v in labels.items())

    def probe() -> _State:
        objects = [
            custom.get_namespaced_custom_object(resource.group, resource.version, namespace, resource.plural, n)
            for n in names
        ]
        return _State(
            kind=resource.kind, objects=objects, pods=core.list_namespaced_pod(namespace, label_selector=selector).items
        )

    def failed(state: _State) -> str | None:
        for obj in state.objects:
            if cond := condition(obj, resource.failed):
                return (
                    f"{resource.kind.lower()} {obj['metadata']['name']} failed: "
                    f"{cond.get('reason')}: {cond.get('message')}"
                )
        return pod_blocker(state.pods)

    failure: str | None = None
    try:
        wait_for(
            probe,
            timeout_s=timeout_s,
            describe=f"{resource.kind} workload {spec.name} to reach {resource.succeeded}",
            done=lambda s: all(condition(o, resource.succeeded) for o in s.objects),
            fail_if=failed,
            state=_State.describe,
        )
    except (FailedWait, WaitTimeout) as exc:
        failure = str(exc)
    evidence = gather(api_client, namespace, label_selector=selector)
    if artifacts_dir is not None:
        write_artifacts(api_client, namespace, artifacts_dir, evidence)
    if failure is not None:
        extra = resource.explain(evidence)
        raise WorkloadFailed(f"{failure}. {evidence.explain()}" + (f"; {extra}" if extra else ""))
    logs = container_logs(core, namespace, [p.name for p in evidence.pods])
    duration = time.monotonic() - started
    log.info("%s workload %s completed in %.2fs", resource.kind, spec.name, duration)
    return RunResult(
        workload=spec.name,
        namespace=namespace,
        params=rendered.params,
        logs=logs,
        evidence=evidence,
        duration_s=duration,
        emulated=any(p.emulated for p in evidence.pods),
        refs=refs,
    )


__all__ = ["ConditionResource", "condition", "run_to_condition"]
