"""All-or-nothing admission with Kueue: a dedicated queue with a known quota, and gangs that fit it or do not.

Why the harness builds these objects (not a workload manifest): the check needs a ClusterQueue whose quota it
controls (cluster-scoped, so it must be removed explicitly; namespace deletion does not), and it must submit a Job
and watch whether Kueue admits it without waiting for a completion that, for the over-capacity gang, never comes.
Kueue admits a Job's whole pod set against the quota or nothing (its Workload stays ``QuotaReserved=False`` and
the Job suspended), which is the gang property checked: a gang that fits starts all its pods, and a gang one pod
over the quota starts none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.fields import pod_status
from harness.cluster.forbidden import explain_forbidden
from harness.cluster.target import ClusterHandle
from harness.cluster.wait import wait_for
from harness.errors import WaitTimeout

log = logging.getLogger(__name__)

__all__ = ["KUEUE_API", "QUEUE_LABEL", "Admission", "dedicated_queue", "gang_job", "queue_objects", "submit_gang"]

KUEUE_API = "kueue.x-k8s.io/v1beta1"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
POD_CPU_MILLIS = 100


def queue_objects(*, name: str, namespace: str, pods: int) -> list[dict[str, Any]]:
    """A ResourceFlavor, a ClusterQueue admitting only ``namespace`` with quota for exactly ``pods`` gang pods
    (POD_CPU_MILLIS CPU and 32 MiB each), and the namespace's LocalQueue, all named ``name``."""
    return [
        {"apiVersion": KUEUE_API, "kind": "ResourceFlavor", "metadata": {"name": name}},
        {
            "apiVersion": KUEUE_API,
            "kind": "ClusterQueue",
            "metadata": {"name": name},
            "spec": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", "memory"],
                        "flavors": [
                            {
                                "name": name,
                                "resources": [
                                    {"name": "cpu", "nominalQuota": f"{pods * POD_CPU_MILLIS}m"},
                                    {"name": "memory", "nominalQuota": f"{pods * 32}Mi"},
                                ],
                            }
                        ],
                    }
                ],
            },
        },
        {"apiVersion": KUEUE_API, "kind": "LocalQueue", "metadata": {"name": name}, "spec": {"clusterQueue": name}},
    ]


def gang_job(*, name: str, queue: str, size: int, image: str) -> dict[str, Any]:
    """A Job of ``size`` parallel pods in ``queue``, submitted suspended (Kueue unsuspends it on admission)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {QUEUE_LABEL: queue}},
        "spec": {
            "suspend": True,
            "parallelism": size,
            "completions": size,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "kueue-gang", "aibench.io/gang": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [
                        {
                            "name": "member",
                            "image": image,
                            "command": ["sleep", "3600"],
                            "resources": {
                                "requests": {"cpu": f"{POD_CPU_MILLIS}m", "memory": "32Mi"},
                                "limits": {"memory": "32Mi"},
                            },
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        }
                    ],
                },
            },
        },
    }  # fmt: skip


@contextmanager
def dedicated_queue(
    cluster: ClusterHandle,
    *,
    name: str,
    namespace: str,
    pods: int,
    labels: Mapping[str, str],
) -> Iterator[str]:
    """Create the queue objects, yield the LocalQueue name, delete the cluster-scoped ones afterwards (always)."""
    applier = cluster.applier
    objects = queue_objects(name=name, namespace=namespace, pods=pods)
    try:
        applier.apply(objects, namespace=namespace, labels=labels)
        yield name
    finally:
        for obj in objects[:2][::-1]:  # ClusterQueue, then ResourceFlavor
            try:
                applier.resource(obj["apiVersion"], obj["kind"]).delete(name=obj["metadata"]["name"])
            except ApiException as exc:
                if exc.status != 404:
                    log.warning(
                        "cannot delete %s %s: %s",
                        obj["kind"],
                        obj["metadata"]["name"],
                        explain_forbidden(exc) or exc.reason,
                    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    """What became of a submitted gang within the settle time."""

    admitted: bool  # the Job was unsuspended
    running: int  # pods started (Running or Succeeded) at the last look
    most_running: int  # the most pods seen started at one look
    size: int

    @property
    def all_or_nothing(self) -> bool:
        return self.most_running in (0, self.size)


def submit_gang(
    cluster: ClusterHandle,
    job: Mapping[str, Any],
    *,
    namespace: str,
    labels: Mapping[str, str],
    settle_s: float,
    expect_admission: bool,
) -> Admission:
    """Apply the gang Job and watch it for up to ``settle_s``: until all its pods run together (when admission is
    expected), or for the whole settle time (when it is not: any pod starting is the finding)."""
    cluster.applier.apply([dict(job)], namespace=namespace, labels=labels)
    batch, core = client.BatchV1Api(cluster.api_client), client.CoreV1Api(cluster.api_client)
    name, size = job["metadata"]["name"], int(job["spec"]["parallelism"])
    seen = {"most": 0}

    def probe() -> tuple[bool, int]:
        current = batch.read_namespaced_job(name, namespace)
        pods = core.list_namespaced_pod(namespace, label_selector=f"aibench.io/gang={name}").items
        # Started = Running or already Succeeded: on emulated nodes (kwok) a Job's pods complete after a few
        # seconds whatever their command, so "all Running at one look" would miss a gang that was admitted whole.
        running = sum(1 for p in pods if pod_status(p).phase in ("Running", "Succeeded"))
        seen["most"] = max(seen["most"], running)
        return not (current.spec.suspend if current.spec else False), running

    state = (False, 0)
    try:
        state = wait_for(
            probe,
            timeout_s=settle_s,
            describe=f"Kueue gang {name} ({size} pods)",
            done=(lambda s: s[1] == size) if expect_admission else (lambda s: s[1] > 0),
            state=lambda s: f"admitted={s[0]} running={s[1]}",
        )
    except WaitTimeout:
        state = probe()
    return Admission(admitted=state[0], running=state[1], most_running=seen["most"], size=size)
