"""Run-to-completion workloads: Jobs (single, parallel, Indexed) and bare Pods.

The runner applies the rendered manifests (plus a ConfigMap carrying the workload's scripts), waits until every
Job completes or something makes completion impossible, and returns every container's log. "Impossible" is
decided at once, not waited out: an unschedulable pod (with the scheduler's own message), a Job that failed, a
container that cannot be configured or pulled. Any failure raises :class:`WorkloadFailed` whose message carries
pod phases, container reasons, the last warning events and log tails.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from harness.catalog.render import Rendered
from harness.catalog.spec import WorkloadSpec
from harness.cluster.collect import Evidence, container_logs, gather, pod_phases, write_artifacts
from harness.cluster.manifests import AppliedRef, Applier
from harness.cluster.wait import FailedWait, wait_for
from harness.errors import WaitTimeout, WorkloadFailed
from harness.runners.failures import pod_blocker, pvc_blocker

log = logging.getLogger(__name__)


# A dynamically provisioned claim Pending this long is stuck (kube's own e2e storage tests give claims 5 minutes).
CLAIM_BIND_DEADLINE_S = 300.0


def scripts_configmap_name(workload: str) -> str:
    return f"{workload}-scripts"[:63]


def apply_workload(
    api_client: client.ApiClient,
    spec: WorkloadSpec,
    rendered: Rendered,
    *,
    namespace: str,
    labels: Mapping[str, str],
    artifacts_dir: Path | None,
    applier: Applier | None = None,
) -> list[AppliedRef]:
    """Apply the rendered manifests, preceded by the ConfigMap carrying the workload's scripts; the exact
    documents applied are saved as ``manifests.yaml`` among the test's artifacts."""
    documents: list[dict[str, Any]] = list(rendered.documents)
    if rendered.scripts:
        documents.insert(
            0,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": scripts_configmap_name(spec.name)},
                "data": dict(rendered.scripts),
            },
        )
    if artifacts_dir is not None:
        artifacts_dir.mkdir(parents=True, exist_ok=True)
        (artifacts_dir / "manifests.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return (applier or Applier(api_client)).apply(documents, namespace=namespace, labels=labels)


@dataclass(slots=True, kw_only=True)
class RunResult:
    """What one run produced."""

    workload: str
    namespace: str
    params: Mapping[str, str]
    logs: dict[str, str]  # "pod/container" -> full log
    evidence: Evidence
    duration_s: float
    emulated: bool
    refs: list[AppliedRef] = field(default_factory=list)

    def node_of(self, container: str = "") -> str:
        """The node(s) the run's pods (those with ``container``) ran on, comma-joined."""
        pods = {key.split("/", 1)[0] for key in self.logs if not container or key.endswith("/" + container)}
        return ",".join(sorted({p.node for p in self.evidence.pods if p.name in pods and p.node}))

    def log_of(self, container: str = "") -> str:
        """All logs of ``container`` (every pod), or of every container, joined in pod order."""
        keys = sorted(k for k in self.logs if not container or k.endswith("/" + container))
        return "".join(self.logs[k] for k in keys)


@dataclass(slots=True)
class _State:
    jobs: list[client.V1Job]
    pods: list[client.V1Pod]
    volume_problem: str | None = None

    def describe(self) -> str:
        parts = []
        for job in self.jobs:
            s = job.status
            parts.append(
                f"job {job.metadata.name}: active={s.active or 0} succeeded={s.succeeded or 0} failed={s.failed or 0}"
            )
        parts.append("pods: " + pod_phases(self.pods))
        return "; ".join(parts)


def _job_condition(job: client.V1Job, kind: str) -> client.V1JobCondition | None:
    return next((c for c in job.status.conditions or [] if c.type == kind and c.status == "True"), None)


def _impossible(state: _State) -> str | None:
    if state.volume_problem:
        return state.volume_problem
    for job in state.jobs:
        if cond := _job_condition(job, "Failed"):
            return f"job {job.metadata.name} failed: {cond.reason}: {cond.message}"
    return pod_blocker(state.pods)


def run_job(
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
    """Apply, wait for completion, read logs; raise :class:`WorkloadFailed` when it cannot complete.

    Pass the session's ``applier`` to reuse its discovery cache (a fresh one re-reads API discovery).
    """
    started = time.monotonic()
    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    refs = apply_workload(
        api_client, spec, rendered, namespace=namespace, labels=labels, artifacts_dir=artifacts_dir, applier=applier
    )
    job_names = [r.name for r in refs if r.kind == "Job"]
    pod_names = [r.name for r in refs if r.kind == "Pod"]
    if not job_names and not pod_names:
        raise WorkloadFailed(f"workload {spec.name}: its manifests define no Job or Pod to run")
    run_selector = ",".join(f"{k}={v}" for k, v in labels.items())

    claim_names = [r.name for r in refs if r.kind == "PersistentVolumeClaim"]
    bound_claims: set[str] = set()

    def probe() -> _State:
        jobs = [batch.read_namespaced_job_status(name, namespace) for name in job_names]
        pods = core.list_namespaced_pod(namespace, label_selector=run_selector).items
        volume_problem = (
            pvc_blocker(
                core,
                namespace,
                claim_names,
                bound_claims,
                waited_s=time.monotonic() - started,
                bind_deadline_s=min(CLAIM_BIND_DEADLINE_S, timeout_s),
            )
            if claim_names
            else None
        )
        return _State(jobs=jobs, pods=pods, volume_problem=volume_problem)

    def finished(state: _State) -> bool:
        jobs_done = all(_job_condition(j, "Complete") for j in state.jobs)
        wanted = [p for p in state.pods if p.metadata.name in pod_names]
        pods_done = len(wanted) == len(pod_names) and all(p.status.phase == "Succeeded" for p in wanted)
        return jobs_done and pods_done

    def bare_pod_failed(state: _State) -> str | None:
        for pod in state.pods:
            if pod.metadata.name in pod_names and pod.status.phase == "Failed":
                return f"pod {pod.metadata.name} failed"
        return _impossible(state)

    failure: str | None = None
    try:
        wait_for(
            probe,
            timeout_s=timeout_s,
            describe=f"workload {spec.name} to complete",
            done=finished,
            fail_if=bare_pod_failed,
            state=_State.describe,
        )
    except FailedWait as exc:
        failure = str(exc)
    except WaitTimeout as exc:
        failure = str(exc)
    evidence = gather(api_client, namespace, label_selector=run_selector)
    if artifacts_dir is not None:
        write_artifacts(api_client, namespace, artifacts_dir, evidence)
    emulated = any(p.emulated for p in evidence.pods)
    if failure is not None:
        raise WorkloadFailed(f"{failure}. {evidence.explain()}")
    logs = container_logs(core, namespace, [p.name for p in evidence.pods])
    duration = time.monotonic() - started
    log.info("workload %s completed in %.2fs", spec.name, duration)
    return RunResult(
        workload=spec.name,
        namespace=namespace,
        params=rendered.params,
        logs=logs,
        evidence=evidence,
        duration_s=duration,
        emulated=emulated,
        refs=refs,
    )
