"""Typed reads of the kubernetes client's models, where its types are looser than what the API server sends.

Every field of a ``V1*`` model is ``Optional`` in the client (the same classes build requests, where anything may be
left out), but an object read back from the API server always has ``metadata`` with a ``name``, a pod always has a
``spec``, and a missing ``status``/``state`` means "nothing reported yet", which reads the same as an empty one.
These functions say that once, so a reader neither repeats a None check at every field nor silences the checker;
an object that really lacks its name (not one the server sent) reads as ``""`` rather than raising mid-report.
"""

from __future__ import annotations

from typing import Protocol

from kubernetes import client


class _HasMetadata(Protocol):
    @property
    def metadata(self) -> client.V1ObjectMeta | None: ...


def metadata(obj: _HasMetadata) -> client.V1ObjectMeta:
    """The object's metadata (an empty one when absent: only objects never sent by a server lack it)."""
    return obj.metadata or client.V1ObjectMeta()


def name_of(obj: _HasMetadata) -> str:
    """``metadata.name`` (always set on objects the server returns)."""
    return metadata(obj).name or ""


def labels_of(obj: _HasMetadata) -> dict[str, str]:
    return metadata(obj).labels or {}


def annotations_of(obj: _HasMetadata) -> dict[str, str]:
    return metadata(obj).annotations or {}


def pod_spec(pod: client.V1Pod) -> client.V1PodSpec:
    """The pod's spec (the API server rejects a pod without one)."""
    return pod.spec or client.V1PodSpec(containers=[])


def pod_status(pod: client.V1Pod) -> client.V1PodStatus:
    """The pod's status; a pod the kubelet has not reported on yet reads as an empty one (no phase)."""
    return pod.status or client.V1PodStatus()


def container_statuses(pod: client.V1Pod) -> list[client.V1ContainerStatus]:
    """Init containers first, then the app containers: the order their reasons explain a failure in."""
    status = pod_status(pod)
    return (status.init_container_statuses or []) + (status.container_statuses or [])


def container_state(status: client.V1ContainerStatus) -> client.V1ContainerState:
    """A container's state; none reported reads as neither waiting, running nor terminated."""
    return status.state or client.V1ContainerState()
