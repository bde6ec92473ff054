"""What makes a workload impossible to finish, decided from pod state at once rather than waited out."""

from __future__ import annotations

from collections.abc import Iterable

from kubernetes import client

from harness.cluster.fields import container_state, container_statuses, name_of, pod_status

FATAL_WAITING = (
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
)
CRASHLOOP_RESTARTS = 3
# kube-scheduler's reason while a pod's claims are still being provisioned: transient, judged by pvc_blocker
UNBOUND_CLAIMS = "unbound immediate PersistentVolumeClaims"


def phase_of(pod: client.V1Pod) -> str:
    """The pod's phase ("" before the server sets it)."""
    return pod_status(pod).phase or ""


def pvc_blocker(
    core: client.CoreV1Api,
    namespace: str,
    claims: Iterable[str],
    bound: set[str],
    *,
    waited_s: float = 0.0,
    bind_deadline_s: float = float("inf"),
) -> str | None:
    """A claim that can never bind: its provisioner said so (ProvisioningFailed), e.g. an unknown StorageClass or
    a volume mode the class cannot provide; or it is still Pending after ``bind_deadline_s`` (no provisioner acts on
    it), reported with its last event. Claims seen Bound are remembered in ``bound`` and not read again; events are
    read only while some claim is unbound."""
    pending = []
    for claim in claims:
        if claim in bound:
            continue
        pvc = core.read_namespaced_persistent_volume_claim(claim, namespace)
        if pvc.status is not None and pvc.status.phase == "Bound":
            bound.add(claim)
        else:
            pending.append(claim)
    if not pending:
        return None
    events = [
        e
        for e in core.list_namespaced_event(namespace).items
        if e.involved_object.kind == "PersistentVolumeClaim" and e.involved_object.name in pending
    ]
    for event in events:
        if event.type == "Warning" and event.reason == "ProvisioningFailed":
            return f"PersistentVolumeClaim {event.involved_object.name} cannot be provisioned: {event.message}"
    if waited_s > bind_deadline_s:
        last = {e.involved_object.name: f"{e.reason}: {e.message}" for e in events}
        claim = pending[0]
        return (
            f"PersistentVolumeClaim {claim} is still Pending after {waited_s:.0f}s: "
            f"{last.get(claim, 'no provisioner acted on it (no events)')}"
        )
    return None


def pod_blocker(pods: Iterable[client.V1Pod]) -> str | None:
    """The first reason a pod can never become useful: unschedulable (with the scheduler's message), an image or
    configuration error, a command that cannot start (retrying cannot help), or a crash loop past
    :data:`CRASHLOOP_RESTARTS` restarts."""
    for pod in pods:
        status, name = pod_status(pod), name_of(pod)
        for cond in status.conditions or []:
            if (
                cond.type == "PodScheduled"
                and cond.status == "False"
                and cond.reason == "Unschedulable"
                and UNBOUND_CLAIMS not in (cond.message or "")
            ):
                return f"pod {name} is Unschedulable: {cond.message}"
        for cs in container_statuses(pod):
            waiting = container_state(cs).waiting
            if waiting and waiting.reason in FATAL_WAITING:
                return f"pod {name} container {cs.name}: {waiting.reason}: {waiting.message or ''}"
            for state in (cs.state, cs.last_state):
                terminated = state.terminated if state is not None else None
                if terminated is not None and terminated.reason in ("ContainerCannotRun", "StartError"):
                    return f"pod {name} container {cs.name}: {terminated.reason}: {terminated.message or ''}"
            if waiting and waiting.reason == "CrashLoopBackOff" and cs.restart_count >= CRASHLOOP_RESTARTS:
                return f"pod {name} container {cs.name}: CrashLoopBackOff after {cs.restart_count} restarts"
    return None
