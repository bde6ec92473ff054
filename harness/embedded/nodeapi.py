"""The embedded store as the kubelet's control plane (:class:`harness.node.api.NodeApi`).

The kubelet of the embedded target runs in the API server's process, so its reads and writes go straight to the
store: the same verbs a kubelet uses over HTTP, without serialising every status write (the embedded target keeps
its pod-creation rate this way; the REST implementation for a real API server is :mod:`harness.node.restapi`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from harness.embedded.events import record_event
from harness.embedded.store import Store
from harness.node.api import PODS, EventKind, Key, ObjectEvent


class StoreNodeApi:
    """:class:`NodeApi` over an in-process :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pods = store.registry.get(*PODS)

    def find(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.find(key, namespace, name)

    def iter(self, key: Key, namespace: str | None = None) -> Iterable[dict[str, Any]]:
        return self.store.iter(key, namespace)

    def update_pod(
        self, namespace: str, name: str, change: Callable[[dict[str, Any]], bool], *, with_metadata: bool = False
    ) -> None:
        self.store.mutate(self._pods, namespace, name, change, subresource="all" if with_metadata else "status")

    def finish_pod_delete(self, pod: dict[str, Any]) -> None:
        self.store.finish_delete(self._pods, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def event(
        self, involved: dict[str, Any], *, type_: EventKind, reason: str, message: str, component: str = "kubelet"
    ) -> None:
        record_event(self.store, involved, type_=type_, reason=reason, message=message, component=component)

    def subscribe(self, listener: Callable[[ObjectEvent], None]) -> None:
        self.store.add_listener(listener)
