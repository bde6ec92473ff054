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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from harness.cluster.collect import Evidence, pod_phases
from harness.cluster.fields import metadata, name_of
from harness.cluster.target import ClusterHandle
from harness.cluster.wait import wait_for
from harness.errors import WorkloadFailed
from harness.runners.custom import custom_object
from harness.runners.failures import phase_of, pod_blocker
from harness.runners.skeleton import Launch, WatchRunner

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


class _RayJobWatch:
    """The one RayJob to deployment Complete with job SUCCEEDED; a finished-but-failed job or a blocked pod ends it.
    Evidence covers the whole namespace: the operator's head, worker and submitter pods carry its labels, not ours."""

    def __init__(self, launch: Launch) -> None:
        names = launch.names("RayJob")
        if len(names) != 1:
            raise WorkloadFailed(
                f"workload {launch.spec.name}: its manifests must define exactly one RayJob (found {len(names)})"
            )
        self.name = names[0]
        self.namespace = launch.namespace
        self.core = client.CoreV1Api(launch.api_client)
        self.custom = client.CustomObjectsApi(launch.api_client)
        self.awaited = f"RayJob {self.name} to succeed"
        self.evidence_selector = ""

    def probe(self) -> _RayJobState:
        rayjob = custom_object(
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "rayjobs", self.name)
        )
        return _RayJobState(rayjob=rayjob, pods=self.core.list_namespaced_pod(self.namespace).items)

    def done(self, state: _RayJobState) -> bool:
        status = state.status
        return status.get("jobDeploymentStatus") == "Complete" and status.get("jobStatus") == "SUCCEEDED"

    def impossible(self, state: _RayJobState) -> str | None:
        status = state.status
        if status.get("jobDeploymentStatus") in _FINISHED_DEPLOYMENT or status.get("jobStatus") in _FAILED_JOB:
            return (
                f"RayJob {self.name} ended with deployment {status.get('jobDeploymentStatus')}, job "
                f"{status.get('jobStatus')}: {status.get('reason', '')} {status.get('message', '')}".rstrip()
            )
        return pod_blocker(state.pods)

    def explain(self, evidence: Evidence, logs: Callable[[], dict[str, str]]) -> str:
        driver = _tail(driver_log(logs(), self.name))
        return f"Driver log (last lines):\n{driver or '(none)'}"


#: KubeRay RayJobs run to completion.
RAYJOB = WatchRunner(noun="RayJob workload", watch=_RayJobWatch)


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
        names=tuple(sorted(name_of(p) for p in pods if phase_of(p) == "Running" and not metadata(p).deletion_timestamp))
    )


def scale_worker_group(
    cluster_handle: ClusterHandle, namespace: str, cluster: str, group: str, replicas: int, *, timeout_s: float
) -> tuple[WorkerSet, float]:
    """Set the group's ``replicas``; return the Running workers once they number ``replicas``, and the seconds
    the operator took."""
    core = client.CoreV1Api(cluster_handle.api_client)
    custom = client.CustomObjectsApi(cluster_handle.api_client)
    raycluster = custom_object(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rayclusters", cluster))
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
    cluster_handle: ClusterHandle, namespace: str, cluster: str, group: str, *, timeout_s: float
) -> tuple[str, str, float]:
    """Delete one Running worker; return (deleted, replacement, seconds) once the group is back to its size
    with a new pod Running."""
    core = client.CoreV1Api(cluster_handle.api_client)
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
    "RAYJOB",
    "WorkerSet",
    "driver_log",
    "replace_deleted_worker",
    "running_workers",
    "scale_worker_group",
]
