"""Namespace lifecycle: per-namespace defaults on creation, content cascade on deletion.

Creation: kube's serviceaccount and root-ca-cert-publisher controllers put a ``default`` ServiceAccount and a
``kube-root-ca.crt`` ConfigMap into every namespace (and put them back when deleted); pods and tools expect both.

Deletion: the API server marks a deleted namespace (``deletionTimestamp``, phase Terminating); this controller
deletes every namespaced object in it and, once nothing is left, removes the namespace itself.
"""

from __future__ import annotations

import logging
from typing import Any

from harness.embedded import apierrors
from harness.embedded.controllers.base import ANY_KEY, CONFIGMAPS, ContextController
from harness.embedded.store import Key, WatchEvent

log = logging.getLogger(__name__)

NAMESPACES: Key = ("", "namespaces")
SERVICEACCOUNTS: Key = ("", "serviceaccounts")
ROOT_CA = "kube-root-ca.crt"


class NamespaceController(ContextController):
    name = "namespace"
    watches: tuple[Key, ...] = (ANY_KEY,)

    def work_for(self, event: WatchEvent) -> list[tuple[str, str]]:
        meta = event.obj["metadata"]
        if event.key == NAMESPACES:
            return [] if event.type == "DELETED" else [("", meta["name"])]
        namespace = meta.get("namespace")
        if not namespace or event.type != "DELETED":
            return []
        if (event.key, meta["name"]) in ((SERVICEACCOUNTS, "default"), (CONFIGMAPS, ROOT_CA)):
            return [("", namespace)]
        ns = self.ctx.store.find(NAMESPACES, "", namespace)
        if ns is not None and ns["metadata"].get("deletionTimestamp"):
            return [("", namespace)]
        return []

    def resync(self) -> list[tuple[str, str]]:
        return [("", ns["metadata"]["name"]) for ns in self.ctx.store.iter(NAMESPACES)]

    def reconcile(self, namespace: str, name: str) -> float | None:
        ns = self.ctx.store.find(NAMESPACES, "", name)
        if ns is None:
            return None
        if ns["metadata"].get("deletionTimestamp"):
            return self._drain(name)
        self._ensure_defaults(name)
        return None

    def _ensure_defaults(self, namespace: str) -> None:
        store = self.ctx.store
        if store.find(SERVICEACCOUNTS, namespace, "default") is None:
            self._create(SERVICEACCOUNTS, namespace, {"metadata": {"name": "default"}})
        if store.find(CONFIGMAPS, namespace, ROOT_CA) is None:
            # The CA that signed the API server's serving certificate, as kube's root-ca-cert-publisher does.
            self._create(
                CONFIGMAPS, namespace, {"metadata": {"name": ROOT_CA}, "data": {"ca.crt": self.ctx.root_ca_pem}}
            )

    def _create(self, key: Key, namespace: str, obj: dict[str, Any]) -> None:
        try:
            self.ctx.create(self.ctx.rtype(key), namespace, obj)
        except apierrors.ApiError as err:
            if err.code not in (403, 404, 409):  # namespace terminating / gone, or someone was faster
                raise
            log.debug("namespace %s: %s not created: %s", namespace, obj["metadata"]["name"], err.message)

    def _drain(self, namespace: str) -> float | None:
        store = self.ctx.store
        remaining = 0
        seen: set[Key] = set()
        for rtype in store.registry.types():
            if not rtype.namespaced or rtype.key in seen:
                continue
            seen.add(rtype.key)
            for obj in store.iter(rtype.key, namespace):
                remaining += 1
                meta = obj["metadata"]
                if meta.get("deletionTimestamp"):
                    continue
                graceful = rtype.kind == "Pod" and self.ctx.graceful_delete(rtype, obj, None)
                try:
                    store.delete(rtype, namespace, meta["name"], precondition_uid=meta["uid"], graceful=graceful)
                except apierrors.ApiError as err:
                    if err.code not in (404, 409):
                        raise
        if remaining and any(store.count(key, namespace) for key in seen):
            # DELETED events of what is left bring us back; the timer only covers objects blocked elsewhere.
            return 5.0
        log.info("namespace %s is empty; removing it", namespace)
        store.finish_delete(self.ctx.rtype(NAMESPACES), "", namespace)
        return None
