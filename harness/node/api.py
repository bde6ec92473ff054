"""What the kubelet needs from a control plane, as one narrow interface.

The same pod worker runs pods for the embedded API server and for a real kube-apiserver; this Protocol is the seam.
Its verbs are the kubelet's own: read an object (``find``), list a resource it keeps in sync (``iter``), write a
pod's status read-modify-write (``update_pod``), finish a graceful deletion (``finish_pod_delete``), record an
Event, and receive the changes of the resources it watches (``subscribe``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

Key = tuple[str, str]  # (API group, plural resource), e.g. ("", "pods")
EventKind = Literal["Normal", "Warning"]

PODS: Key = ("", "pods")
SERVICES: Key = ("", "services")
ENDPOINTS: Key = ("", "endpoints")
CONFIGMAPS: Key = ("", "configmaps")
SECRETS: Key = ("", "secrets")
PVCS: Key = ("", "persistentvolumeclaims")
PVS: Key = ("", "persistentvolumes")
NAMESPACES: Key = ("", "namespaces")
NETWORK_POLICIES: Key = ("networking.k8s.io", "networkpolicies")
NADS: Key = ("k8s.cni.cncf.io", "network-attachment-definitions")


class ObjectEvent(Protocol):
    """One change of a watched object (the embedded store's WatchEvent has this shape)."""

    @property
    def key(self) -> Key: ...

    @property
    def type(self) -> str: ...  # ADDED | MODIFIED | DELETED

    @property
    def obj(self) -> dict[str, Any]: ...


class NodeApi(Protocol):
    """The control plane as the kubelet sees it."""

    def find(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (or the node may not read it)."""
        ...

    def iter(self, key: Key, namespace: str | None = None) -> Iterable[dict[str, Any]]:
        """Objects of a resource the kubelet keeps in sync (pods, Services, Endpoints, Namespaces, NetworkPolicies,
        NetworkAttachmentDefinitions...)."""
        ...

    def update_pod(
        self, namespace: str, name: str, change: Callable[[dict[str, Any]], bool], *, with_metadata: bool = False
    ) -> None:
        """Read-modify-write of a pod's status (and its annotations with ``with_metadata``); ``change`` edits a
        private copy and returns False to skip the write. A pod that is gone is not an error."""
        ...

    def finish_pod_delete(self, pod: dict[str, Any]) -> None:
        """Remove a pod whose containers have stopped after its deletion was requested (grace period 0)."""
        ...

    def event(
        self, involved: dict[str, Any], *, type_: EventKind, reason: str, message: str, component: str = "kubelet"
    ) -> None:
        """Record (or bump) an Event about ``involved`` from ``component`` on this node; never raises."""
        ...

    def subscribe(self, listener: Callable[[ObjectEvent], None]) -> None:
        """Deliver changes of what ``iter`` serves (pods of every node: the kubelet picks its own by nodeName)."""
        ...
