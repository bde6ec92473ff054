"""Run-to-completion workloads: Jobs (single, parallel, Indexed) and bare Pods.

The runner applies the rendered manifests (plus a ConfigMap carrying the workload's scripts), waits until every
Job completes or something makes completion impossible, and returns every container's log. "Impossible" is
decided at once, not waited out: an unschedulable pod (with the scheduler's own message), a Job that failed, a
container that cannot be configured or pulled. Any failure raises :class:`WorkloadFailed` whose message carries
pod phases, container reasons, the last warning events and log tails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client

from harness.cluster.collect import Evidence, pod_phases
from harness.cluster.fields import name_of
from harness.errors import WorkloadFailed
from harness.runners.failures import phase_of, pod_blocker, pvc_blocker
from harness.runners.skeleton import Launch, RunResult, WatchRunner, apply_workload, scripts_configmap_name

# A dynamically provisioned claim Pending this long is stuck (kube's own e2e storage tests give claims 5 minutes).
CLAIM_BIND_DEADLINE_S = 300.0


@dataclass(slots=True)
class _State:
    jobs: list[client.V1Job]
    pods: list[client.V1Pod]
    volume_problem: str | None = None

    def describe(self) -> str:
        parts = []
        for job in self.jobs:
            s = job.status or client.V1JobStatus()
            parts.append(
                f"job {name_of(job)}: active={s.active or 0} succeeded={s.succeeded or 0} failed={s.failed or 0}"
            )
        parts.append("pods: " + pod_phases(self.pods))
        return "; ".join(parts)


def _job_condition(job: client.V1Job, kind: str) -> client.V1JobCondition | None:
    conditions = (job.status.conditions if job.status is not None else None) or []
    return next((c for c in conditions if c.type == kind and c.status == "True"), None)


class _JobWatch:
    """Jobs to Complete and bare Pods to Succeeded; a failed Job or Pod, a blocked pod or a claim that can never
    bind makes it impossible at once."""

    def __init__(self, launch: Launch) -> None:
        self.launch = launch
        self.job_names = launch.names("Job")
        self.pod_names = launch.names("Pod")
        if not self.job_names and not self.pod_names:
            raise WorkloadFailed(f"workload {launch.spec.name}: its manifests define no Job or Pod to run")
        self.claim_names = launch.names("PersistentVolumeClaim")
        self.bound_claims: set[str] = set()
        self.core = client.CoreV1Api(launch.api_client)
        self.batch = client.BatchV1Api(launch.api_client)
        self.awaited = f"workload {launch.spec.name} to complete"
        self.evidence_selector = launch.selector

    def probe(self) -> _State:
        namespace = self.launch.namespace
        jobs = [self.batch.read_namespaced_job_status(name, namespace) for name in self.job_names]
        pods = self.core.list_namespaced_pod(namespace, label_selector=self.launch.selector).items
        volume_problem = (
            pvc_blocker(
                self.core,
                namespace,
                self.claim_names,
                self.bound_claims,
                waited_s=time.monotonic() - self.launch.started,
                bind_deadline_s=min(CLAIM_BIND_DEADLINE_S, self.launch.timeout_s),
            )
            if self.claim_names
            else None
        )
        return _State(jobs=jobs, pods=pods, volume_problem=volume_problem)

    def done(self, state: _State) -> bool:
        jobs_done = all(_job_condition(j, "Complete") for j in state.jobs)
        wanted = [p for p in state.pods if name_of(p) in self.pod_names]
        pods_done = len(wanted) == len(self.pod_names) and all(phase_of(p) == "Succeeded" for p in wanted)
        return jobs_done and pods_done

    def impossible(self, state: _State) -> str | None:
        for pod in state.pods:
            if name_of(pod) in self.pod_names and phase_of(pod) == "Failed":
                return f"pod {name_of(pod)} failed"
        if state.volume_problem:
            return state.volume_problem
        for job in state.jobs:
            if cond := _job_condition(job, "Failed"):
                return f"job {name_of(job)} failed: {cond.reason}: {cond.message}"
        return pod_blocker(state.pods)

    def explain(self, evidence: Evidence, logs: Callable[[], dict[str, str]]) -> str:
        return ""


#: Run-to-completion Jobs (single, parallel, Indexed) and bare Pods.
JOB = WatchRunner(noun="workload", watch=_JobWatch)


__all__ = [
    "CLAIM_BIND_DEADLINE_S",
    "JOB",
    "RunResult",
    "apply_workload",
    "scripts_configmap_name",
]
