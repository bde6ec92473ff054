"""Multi-node MPI workloads through the MPI Operator: apply an MPIJob (kubeflow.org/v2beta1), wait for it to
succeed, return its launcher's and workers' logs.

Why a runner of its own: the MPIJob is not a Job, its pods come from the operator (launcher Job + worker pods),
and the run labels must be put into its replica templates by hand (the generic applier labels only
``spec.template``). Failures are decided at once where possible (the MPIJob's Failed condition, an unschedulable
worker, a container that cannot start); a run that never finishes times out with the launcher's last log lines,
which for NCCL are the ranks' last words before the hang. A target without the operator fails before anything is
applied, naming the CRD (suites skip on ``requires('mpijob')`` first).
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

GROUP, VERSION, PLURAL = "kubeflow.org", "v2beta1", "mpijobs"
LAUNCHER_TAIL_LINES = 20


def with_replica_labels(rendered: Rendered, labels: Mapping[str, str]) -> Rendered:
    """The rendered documents with ``labels`` added to every MPIJob replica's pod template (so the run's pods
    carry the run and test labels like every other workload's)."""
    documents = []
    for original in rendered.documents:
        doc = copy.deepcopy(original) if original.get("kind") == "MPIJob" else original
        if doc is not original:
            for replica in ((doc.get("spec") or {}).get("mpiReplicaSpecs") or {}).values():
                meta = replica.setdefault("template", {}).setdefault("metadata", {})
                meta["labels"] = {**(meta.get("labels") or {}), **labels}
        documents.append(doc)
    return dataclasses.replace(rendered, documents=tuple(documents))


@dataclass(slots=True)
class _State:
    jobs: list[dict[str, Any]]
    pods: list[client.V1Pod]

    def describe(self) -> str:
        parts = []
        for job in self.jobs:
            conditions = [
                c.get("type") for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
            ]
            parts.append(f"mpijob {job['metadata']['name']}: {', '.join(conditions) or 'no condition yet'}")
        phases: dict[str, int] = {}
        for pod in self.pods:
            phases[pod.status.phase or "Unknown"] = phases.get(pod.status.phase or "Unknown", 0) + 1
        parts.append("pods: " + (", ".join(f"{v} {k}" for k, v in sorted(phases.items())) or "none"))
        return "; ".join(parts)


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def run_mpijob(
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
    """Apply, wait for every MPIJob to succeed, read logs; raise WorkloadFailed when it cannot (with the launcher's
    last lines on a timeout)."""
    started = time.monotonic()
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    refs = apply_workload(
        api_client,
        spec,
        with_replica_labels(rendered, labels),
        namespace=namespace,
        labels=labels,
        artifacts_dir=artifacts_dir,
        applier=applier,
    )
    names = [r.name for r in refs if r.kind == "MPIJob"]
    if not names:
        raise WorkloadFailed(f"workload {spec.name}: its manifests define no MPIJob")
    selector = ",".join(f"{k}={v}" for k, v in labels.items())

    def probe() -> _State:
        jobs = [custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, n) for n in names]
        return _State(jobs=jobs, pods=core.list_namespaced_pod(namespace, label_selector=selector).items)

    def failed(state: _State) -> str | None:
        for job in state.jobs:
            if cond := _condition(job, "Failed"):
                return f"mpijob {job['metadata']['name']} failed: {cond.get('reason')}: {cond.get('message')}"
        return pod_blocker(state.pods)

    failure: str | None = None
    try:
        wait_for(
            probe,
            timeout_s=timeout_s,
            describe=f"MPIJob workload {spec.name} to succeed",
            done=lambda s: all(_condition(j, "Succeeded") for j in s.jobs),
            fail_if=failed,
            state=_State.describe,
        )
    except (FailedWait, WaitTimeout) as exc:
        failure = str(exc)
    evidence = gather(api_client, namespace, label_selector=selector)
    if artifacts_dir is not None:
        write_artifacts(api_client, namespace, artifacts_dir, evidence)
    if failure is not None:
        launcher = {k: v for k, v in evidence.logs.items() if "launcher" in k}
        tail = "; ".join(
            f"last lines of {k}: " + " / ".join(line for line in text.splitlines()[-LAUNCHER_TAIL_LINES:] if line)
            for k, text in launcher.items()
        )
        raise WorkloadFailed(f"{failure}. {evidence.explain()}" + (f"; {tail}" if tail else ""))
    logs: dict[str, str] = {}
    for pod in evidence.pods:
        try:
            obj = core.read_namespaced_pod(pod.name, namespace)
            for container in obj.spec.containers:
                logs[f"{pod.name}/{container.name}"] = core.read_namespaced_pod_log(
                    pod.name, namespace, container=container.name
                )
        except ApiException as exc:  # cleanPodPolicy may remove workers as soon as the MPIJob succeeds
            log.info("no log for %s: %s", pod.name, exc.reason)
    duration = time.monotonic() - started
    log.info("MPIJob workload %s completed in %.2fs", spec.name, duration)
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
