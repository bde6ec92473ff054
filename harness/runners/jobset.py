"""JobSet workloads (jobset.x-k8s.io/v1alpha2, the multi-host TPU form on GKE): apply the JobSet, wait for its
Completed condition, return every pod's log.

Why a runner of its own: the JobSet is not a Job; its child Jobs and pods come from the JobSet controller, and the
run labels must be put into each replicated Job's pod template by hand (the generic applier labels only the
top-level object and ``spec.template``). Failures are decided at once where possible: the JobSet's Failed
condition, an unschedulable pod (with the scheduler's message), a container that cannot start.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from harness.catalog.render import Rendered
from harness.catalog.spec import WorkloadSpec
from harness.cluster.collect import gather, write_artifacts
from harness.cluster.manifests import Applier
from harness.cluster.wait import FailedWait, wait_for
from harness.errors import WaitTimeout, WorkloadFailed
from harness.runners.failures import pod_blocker
from harness.runners.job import RunResult, apply_workload

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "jobset.x-k8s.io", "v1alpha2", "jobsets"


def with_pod_labels(rendered: Rendered, labels: Mapping[str, str]) -> Rendered:
    """The rendered documents with ``labels`` on the pod template of every replicated Job of every JobSet."""
    documents = []
    for original in rendered.documents:
        if original.get("kind") != "JobSet":
            documents.append(original)
            continue
        doc = copy.deepcopy(original)
        for replicated in (doc.get("spec") or {}).get("replicatedJobs") or []:
            job_spec = replicated.setdefault("template", {}).setdefault("spec", {})
            meta = job_spec.setdefault("template", {}).setdefault("metadata", {})
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
        documents.append(doc)
    return dataclasses.replace(rendered, documents=tuple(documents))


def _condition(jobset: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (jobset.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


@dataclass(slots=True)
class _State:
    jobsets: list[dict[str, Any]]
    pods: list[client.V1Pod]

    def describe(self) -> str:
        parts = []
        for jobset in self.jobsets:
            conditions = [
                c.get("type") for c in (jobset.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
            ]
            parts.append(f"jobset {jobset['metadata']['name']}: {', '.join(conditions) or 'no condition yet'}")
        phases: dict[str, int] = {}
        for pod in self.pods:
            phases[pod.status.phase or "Unknown"] = phases.get(pod.status.phase or "Unknown", 0) + 1
        parts.append("pods: " + (", ".join(f"{v} {k}" for k, v in sorted(phases.items())) or "none"))
        return "; ".join(parts)


def run_jobset(
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
    """Apply, wait for every JobSet to complete, read the pods' logs; raise WorkloadFailed when it cannot."""
    started = time.monotonic()
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    refs = apply_workload(
        api_client,
        spec,
        with_pod_labels(rendered, labels),
        namespace=namespace,
        labels=labels,
        artifacts_dir=artifacts_dir,
        applier=applier,
    )
    names = [r.name for r in refs if r.kind == "JobSet"]
    if not names:
        raise WorkloadFailed(f"workload {spec.name}: its manifests define no JobSet")
    selector = ",".join(f"{k}={v}" for k, v in labels.items())

    def probe() -> _State:
        jobsets = [custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, n) for n in names]
        return _State(jobsets=jobsets, pods=core.list_namespaced_pod(namespace, label_selector=selector).items)

    def failed(state: _State) -> str | None:
        for jobset in state.jobsets:
            if cond := _condition(jobset, "Failed"):
                return f"jobset {jobset['metadata']['name']} failed: {cond.get('reason')}: {cond.get('message')}"
        return pod_blocker(state.pods)

    failure: str | None = None
    try:
        wait_for(
            probe,
            timeout_s=timeout_s,
            describe=f"JobSet workload {spec.name} to complete",
            done=lambda s: all(_condition(j, "Completed") for j in s.jobsets),
            fail_if=failed,
            state=_State.describe,
        )
    except (FailedWait, WaitTimeout) as exc:
        failure = str(exc)
    evidence = gather(api_client, namespace, label_selector=selector)
    if artifacts_dir is not None:
        write_artifacts(api_client, namespace, artifacts_dir, evidence)
    if failure is not None:
        raise WorkloadFailed(f"{failure}. {evidence.explain()}")
    logs: dict[str, str] = {}
    for pod in evidence.pods:
        try:
            obj = core.read_namespaced_pod(pod.name, namespace)
            for container in obj.spec.containers:
                logs[f"{pod.name}/{container.name}"] = core.read_namespaced_pod_log(
                    pod.name, namespace, container=container.name
                )
        except ApiException as exc:  # ttlSecondsAfterFinished may remove the child Jobs' pods early
            log.info("no log for %s: %s", pod.name, exc.reason)
    duration = time.monotonic() - started
    log.info("JobSet workload %s completed in %.2fs", spec.name, duration)
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
