"""What makes a workload impossible to finish, decided from pod state at once rather than waited out."""

from __future__ import annotations

from collections.abc import Iterable

from kubernetes import client

FATAL_WAITING = (
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
)
CRASHLOOP_RESTARTS = 3


def pvc_blocker(core: client.CoreV1Api, namespace: str, claims: Iterable[str], bound: set[str]) -> str | None:
    """A claim that can never bind: its provisioner said so (ProvisioningFailed), e.g. an unknown StorageClass or
    a volume mode the class cannot provide. Claims seen Bound are remembered in ``bound`` and not read again;
    events are read only while some claim is unbound."""
    pending = []
    for claim in claims:
        if claim in bound:
            continue
        if core.read_namespaced_persistent_volume_claim(claim, namespace).status.phase == "Bound":
            bound.add(claim)
        else:
            pending.append(claim)
    if not pending:
        return None
    for event in core.list_namespaced_event(namespace).items:
        if (
            event.involved_object.kind == "PersistentVolumeClaim"
            and event.involved_object.name in pending
            and event.type == "Warning"
            and event.reason == "ProvisioningFailed"
        ):
            return f"PersistentVolumeClaim {event.involved_object.name} cannot be provisioned: {event.message}"
    return None


def pod_blocker(pods: Iterable[client.V1Pod]) -> str | None:
    """The first reason a pod can never become useful: unschedulable (with the scheduler's message), an image or
    configuration error, a command that cannot start (retrying cannot help), or a crash loop past
    :data:`CRASHLOOP_RESTARTS` restarts."""
    for pod in pods:
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
                return f"pod {pod.metadata.name} is Unschedulable: {cond.message}"
        for cs in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or []):
            waiting = cs.state.waiting
            if waiting and waiting.reason in FATAL_WAITING:
                return f"pod {pod.metadata.name} container {cs.name}: {waiting.reason}: {waiting.message or ''}"
            for state in (cs.state, cs.last_state):
                terminated = state.terminated if state is not None else None
                if terminated is not None and terminated.reason in ("ContainerCannotRun", "StartError"):
                    return (
                        f"pod {pod.metadata.name} container {cs.name}: {terminated.reason}: {terminated.message or ''}"
                    )
            if waiting and waiting.reason == "CrashLoopBackOff" and cs.restart_count >= CRASHLOOP_RESTARTS:
                return (
                    f"pod {pod.metadata.name} container {cs.name}: CrashLoopBackOff after {cs.restart_count} restarts"
                )
    return None
