"""KubeRay workloads: a RayJob run to completion, and the operator's reconciliation of a running RayCluster.

The RayJob's status is the operator's word (``jobDeploymentStatus`` Complete/Failed, ``jobStatus``
SUCCEEDED/FAILED/STOPPED); the pods say why it cannot get there (an unschedulable head, an image that cannot be
pulled), checked at once like the Job runner does. The benchmark's output is the driver's stdout, which KubeRay's
submitter (K8sJobMode) follows into its own pod log; on failure those driver lines go into the error message.

Reconciliation (``robust_controller``): scale a worker group and the worker pods follow; delete a worker pod and
the operator replaces it. Both only touch objects in the test's own namespace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from harness.catalog.render import Rendered
from harness.catalog.spec import WorkloadSpec
from harness.cluster.collect import container_logs, gather, pod_phases, write_artifacts
from harness.cluster.manifests import Applier
from harness.cluster.wait import FailedWait, wait_for
from harness.errors import WaitTimeout, WorkloadFailed
from harness.runners.failures import pod_blocker
from harness.runners.job import RunResult, apply_workload

log = logging.getLogger(__name__)

GROUP, VERSION = "ray.io", "v1"
CLUSTER_LABEL = "ray.io/cluster"
GROUP_LABEL = "ray.io/group"
NODE_TYPE_LABEL = "ray.io/node-type"
DRIVER_LOG_LINES = 40
_FINISHED_DEPLOYMENT = ("Complete", "Failed")
_FAILED_JOB = ("FAILED", "STOPPED")


@dataclass(frozen=True, slots=True)
class _RayJobState:
    rayjob: Mapping[str, Any]
    pods: list[client.V1Pod]

    @property
    def status(self) -> Mapping[str, Any]:
        return self.rayjob.get("status") or {}

    def describe(self) -> str:
        s = self.status
        pods = pod_phases(self.pods)
        return (
            f"deployment {s.get('jobDeploymentStatus') or 'none'}, job {s.get('jobStatus') or 'none'}, "
            f"cluster {s.get('rayClusterName') or 'not created'}; pods: {pods}"
        )


def _tail(text: str, lines: int = DRIVER_LOG_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def driver_log(logs: Mapping[str, str], rayjob: str) -> str:
    """The submitter pod's log (the driver's stdout): pods named after the RayJob that are not Ray nodes."""
    keys = sorted(k for k in logs if k.startswith(f"{rayjob}-") and "-head-" not in k and "-worker-" not in k)
    return "".join(logs[k] for k in keys)


def run_rayjob(
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
    """Apply the RayJob, wait for the operator to finish it, return every pod's log; raise WorkloadFailed with
    the driver's last lines when the job fails, and at once when a pod can never start."""
    started = time.monotonic()
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    refs = apply_workload(
        api_client, spec, rendered, namespace=namespace, labels=labels, artifacts_dir=artifacts_dir, applier=applier
    )
    names = [r.name for r in refs if r.kind == "RayJob"]
    if len(names) != 1:
        raise WorkloadFailed(f"workload {spec.name}: its manifests must define exactly one RayJob (found {len(names)})")
    name = names[0]

    def probe() -> _RayJobState:
        rayjob = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", name)
        return _RayJobState(rayjob=rayjob, pods=core.list_namespaced_pod(namespace).items)

    def finished(state: _RayJobState) -> bool:
        status = state.status
        return status.get("jobDeploymentStatus") == "Complete" and status.get("jobStatus") == "SUCCEEDED"

    def impossible(state: _RayJobState) -> str | None:
        status = state.status
        if status.get("jobDeploymentStatus") in _FINISHED_DEPLOYMENT or status.get("jobStatus") in _FAILED_JOB:
            return (
                f"RayJob {name} ended with deployment {status.get('jobDeploymentStatus')}, job "
                f"{status.get('jobStatus')}: {status.get('reason', '')} {status.get('message', '')}".rstrip()
            )
        return pod_blocker(state.pods)

    failure: str | None = None
    try:
        wait_for(
            probe,
            timeout_s=timeout_s,
            describe=f"RayJob {name} to succeed",
            done=finished,
            fail_if=impossible,
            state=_RayJobState.describe,
        )
    except (FailedWait, WaitTimeout) as exc:
        failure = str(exc)
    pods = core.list_namespaced_pod(namespace).items
    logs = container_logs(core, namespace, [p.metadata.name for p in pods])
    evidence = gather(api_client, namespace, label_selector="")
    if artifacts_dir is not None:
        write_artifacts(api_client, namespace, artifacts_dir, evidence)
    if failure is not None:
        driver = _tail(driver_log(logs, name))
        raise WorkloadFailed(f"{failure}. Driver log (last lines):\n{driver or '(none)'}\n{evidence.explain()}")
    duration = time.monotonic() - started
    log.info("RayJob %s succeeded in %.1fs", name, duration)
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


# ----------------------------------------------------------------------------- reconciliation
@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSet:
    """The worker pods of one group that are Running and not being deleted."""

    names: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.names)


def running_workers(core: client.CoreV1Api, namespace: str, cluster: str, group: str) -> WorkerSet:
    selector = f"{CLUSTER_LABEL}={cluster},{GROUP_LABEL}={group}"
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return WorkerSet(
        names=tuple(
            sorted(p.metadata.name for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp)
        )
    )


def scale_worker_group(
    api_client: client.ApiClient, namespace: str, cluster: str, group: str, replicas: int, *, timeout_s: float
) -> tuple[WorkerSet, float]:
    """Set the group's ``replicas``; return the Running workers once they number ``replicas``, and the seconds
    the operator took."""
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    raycluster = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rayclusters", cluster)
    groups = raycluster["spec"].get("workerGroupSpecs") or []
    index = next((i for i, g in enumerate(groups) if g.get("groupName") == group), None)
    if index is None:
        raise WorkloadFailed(f"RayCluster {cluster} has no worker group {group!r}")
    groups[index] = {**groups[index], "replicas": replicas}
    if int(groups[index].get("maxReplicas", replicas)) < replicas:
        raise WorkloadFailed(f"RayCluster {cluster} group {group}: maxReplicas is below {replicas}")
    started = time.monotonic()
    # A merge patch replaces the list whole: the other groups go back unchanged, as read.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "rayclusters", cluster, {"spec": {"workerGroupSpecs": groups}}
    )
    workers = wait_for(
        lambda: running_workers(core, namespace, cluster, group),
        timeout_s=timeout_s,
        describe=f"RayCluster {cluster} group {group} to run {replicas} worker(s)",
        done=lambda w: w.count == replicas,
        state=lambda w: f"{w.count} running: {', '.join(w.names) or 'none'}",
    )
    return workers, time.monotonic() - started


def replace_deleted_worker(
    api_client: client.ApiClient, namespace: str, cluster: str, group: str, *, timeout_s: float
) -> tuple[str, str, float]:
    """Delete one Running worker; return (deleted, replacement, seconds) once the group is back to its size
    with a new pod Running."""
    core = client.CoreV1Api(api_client)
    before = running_workers(core, namespace, cluster, group)
    if not before.count:
        raise WorkloadFailed(f"RayCluster {cluster} group {group} has no Running worker to delete")
    victim = before.names[0]
    started = time.monotonic()
    core.delete_namespaced_pod(victim, namespace, grace_period_seconds=0)

    def replaced(workers: WorkerSet) -> bool:
        return workers.count == before.count and victim not in workers.names

    after = wait_for(
        lambda: running_workers(core, namespace, cluster, group),
        timeout_s=timeout_s,
        describe=f"the operator to replace worker {victim} of RayCluster {cluster}",
        done=replaced,
        state=lambda w: f"{w.count} running: {', '.join(w.names) or 'none'}",
    )
    replacement = next(n for n in after.names if n not in before.names)
    return victim, replacement, time.monotonic() - started


__all__ = [
    "CLUSTER_LABEL",
    "GROUP_LABEL",
    "WorkerSet",
    "driver_log",
    "replace_deleted_worker",
    "run_rayjob",
    "running_workers",
    "scale_worker_group",
]
