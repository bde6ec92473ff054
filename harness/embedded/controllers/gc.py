"""Garbage collector: ownerReference cascades, like kube-controller-manager's garbagecollector.

- Background: when an object is gone, each dependent whose owners are all gone is deleted; references to gone
  owners are dropped from dependents that still have a live owner.
- Foreground: an object with a ``deletionTimestamp`` and the ``foregroundDeletion`` finalizer has its dependents
  deleted (themselves in the foreground); once no dependent that blocks (``blockOwnerDeletion``) remains, the
  finalizer is removed and the store removes the object.
- Orphan is done by the store at delete time (it strips the owner references synchronously).

Work is keyed by uid and found through the store's owner-uid index (``Store.dependents``), so a delete costs work
proportional to its dependents, never a scan of all objects.
"""

from __future__ import annotations

import logging
from typing import Any

from harness.embedded import apierrors
from harness.embedded.controllers.base import ANY_KEY, ContextController
from harness.embedded.resources import ResourceType
from harness.embedded.store import Key, WatchEvent

log = logging.getLogger(__name__)

FOREGROUND = "foregroundDeletion"


def _deleting_foreground(obj: dict[str, Any]) -> bool:
    meta = obj["metadata"]
    return bool(meta.get("deletionTimestamp")) and FOREGROUND in (meta.get("finalizers") or ())


class GarbageCollector(ContextController):
    name = "garbagecollector"
    watches: tuple[Key, ...] = (ANY_KEY,)

    def work_for(self, event: WatchEvent) -> list[tuple[str, str]]:
        meta = event.obj["metadata"]
        uid = meta.get("uid", "")
        store = self.ctx.store
        out: list[tuple[str, str]] = []
        if event.type == "DELETED":
            out.extend(("", dep["metadata"]["uid"]) for dep in store.dependents(uid))
            # An owner waiting in the foreground for this dependent may be free to go now.
            out.extend(("", ref["uid"]) for ref in meta.get("ownerReferences") or () if ref.get("uid"))
            return out
        if _deleting_foreground(event.obj):
            out.append(("", uid))
        refs = meta.get("ownerReferences") or ()
        if refs and any(store.by_uid(ref.get("uid", "")) is None for ref in refs):
            out.append(("", uid))  # created (or left) with a dangling owner
        return out

    def resync(self) -> list[tuple[str, str]]:
        """Objects whose cascade may have been missed while the manager was not listening (start-up)."""
        store = self.ctx.store
        out: list[tuple[str, str]] = []
        seen: set[Key] = set()
        for rtype in store.registry.types():
            if rtype.key in seen:
                continue
            seen.add(rtype.key)
            for obj in store.iter(rtype.key):
                meta = obj["metadata"]
                if _deleting_foreground(obj) or any(
                    store.by_uid(ref.get("uid", "")) is None for ref in meta.get("ownerReferences") or ()
                ):
                    out.append(("", meta["uid"]))
        return out

    def reconcile(self, namespace: str, name: str) -> float | None:
        uid = name
        store = self.ctx.store
        obj = store.by_uid(uid)
        if obj is None:
            return None
        if _deleting_foreground(obj):
            self._foreground(obj)
            return None
        refs = obj["metadata"].get("ownerReferences") or ()
        if not refs:
            return None
        live = [ref for ref in refs if store.by_uid(ref.get("uid", "")) is not None]
        if not live:
            self._delete(obj, "Background")
        elif len(live) != len(refs):
            gone = {ref.get("uid") for ref in refs} - {ref.get("uid") for ref in live}

            def drop(copy: dict[str, Any]) -> bool:
                kept = [r for r in copy["metadata"].get("ownerReferences") or () if r.get("uid") not in gone]
                if len(kept) == len(copy["metadata"].get("ownerReferences") or ()):
                    return False
                copy["metadata"]["ownerReferences"] = kept
                return True

            meta = obj["metadata"]
            store.mutate(self._rtype(obj), meta.get("namespace", ""), meta["name"], drop)
        return None

    def _foreground(self, owner: dict[str, Any]) -> None:
        uid = owner["metadata"]["uid"]
        for dep in self.ctx.store.dependents(uid):
            if not dep["metadata"].get("deletionTimestamp"):
                self._delete(dep, "Foreground")
        for dep in self.ctx.store.dependents(uid):
            if any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in dep["metadata"]["ownerReferences"]):
                return  # its DELETED event brings us back here

        def release(copy: dict[str, Any]) -> bool:
            finalizers = [f for f in copy["metadata"].get("finalizers") or () if f != FOREGROUND]
            if len(finalizers) == len(copy["metadata"].get("finalizers") or ()):
                return False
            copy["metadata"]["finalizers"] = finalizers
            if not finalizers:
                del copy["metadata"]["finalizers"]
            return True

        meta = owner["metadata"]
        log.debug("foreground deletion of %s %s/%s complete", owner.get("kind"), meta.get("namespace"), meta["name"])
        self.ctx.store.mutate(self._rtype(owner), meta.get("namespace", ""), meta["name"], release)

    def _delete(self, obj: dict[str, Any], propagation: str) -> None:
        meta = obj["metadata"]
        rtype = self._rtype(obj)
        graceful = rtype.kind == "Pod" and self.ctx.graceful_delete(rtype, obj, None)
        try:
            self.ctx.store.delete(
                rtype,
                meta.get("namespace", ""),
                meta["name"],
                propagation=propagation,
                precondition_uid=meta["uid"],
                graceful=graceful,
            )
        except apierrors.ApiError as err:
            if err.code not in (404, 409):
                raise
            log.debug("gc: %s %s/%s already gone or replaced", obj.get("kind"), meta.get("namespace"), meta["name"])

    def _rtype(self, obj: dict[str, Any]) -> ResourceType:
        rtype = self.ctx.store.registry.for_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if rtype is None:
            raise LookupError(f"no served type for {obj.get('apiVersion')} {obj.get('kind')}")
        return rtype
