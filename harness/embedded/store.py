"""The object store behind the embedded API server: versioned objects, indexes, watch fan-out.

Semantics follow kube-apiserver + etcd closely enough for clients to rely on them:

- one global, monotonically increasing resourceVersion; every write gets the next one;
- optimistic concurrency: a write carrying a stale resourceVersion is a 409 Conflict;
- a bounded window of past events serves watch resumes; asking for a version older than the window is 410 Gone;
- deletion honours finalizers (deletionTimestamp first, removal when the last finalizer goes), and the
  Orphan propagation policy; Background and Foreground cascades are carried out by the garbage collector
  controller, which finds dependents through the owner-uid index kept here (so deletes never scan all objects).

All state sits behind one re-entrant lock. Internal listeners (the controllers' queues) are called under that lock
and must only enqueue; HTTP watchers get events through their own queues.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.embedded import apierrors
from harness.embedded.objects import clone, rfc3339
from harness.embedded.resources import Registry, ResourceType

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Key = tuple[str, str]  # (group, plural)
ObjectRef = tuple[Key, str, str]  # (key, namespace, name)

_NAME_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change, as watchers and controllers see it. ``obj`` is never mutated after publication."""

    rv: int
    key: Key
    type: EventType
    obj: dict[str, Any]
    prev: dict[str, Any] | None = None  # the version before a MODIFIED, so selector watches can emit ADDED/DELETED


@dataclass(eq=False, slots=True)
class Watcher:
    """A subscription of one HTTP watch (or controller) to one resource, optionally one namespace."""

    key: Key
    namespace: str | None
    events: queue.SimpleQueue[WatchEvent | None] = field(default_factory=queue.SimpleQueue)
    closed: bool = False


class Store:
    """Versioned, indexed, watchable storage of Kubernetes objects."""

    def __init__(self, registry: Registry, *, event_window: int = 20_000) -> None:
        self.registry = registry
        self.lock = threading.RLock()
        self._objects: dict[Key, dict[str, dict[str, dict[str, Any]]]] = {}
        self._by_uid: dict[str, ObjectRef] = {}
        self._dependents: dict[str, set[ObjectRef]] = {}
        self._rv = itertools.count(1)
        self._last_rv = 0
        self._events: deque[WatchEvent] = deque(maxlen=event_window)
        self._compacted_rv = 0
        self._watchers: dict[Key, set[Watcher]] = {}
        self._listeners: list[Callable[[WatchEvent], None]] = []

    # ----------------------------------------------------------------- reads
    @property
    def resource_version(self) -> int:
        return self._last_rv

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self._objects.get(rtype.key, {}).get(namespace, {}).get(name)
        if obj is None:
            raise apierrors.not_found(rtype.group, rtype.plural, name)
        return obj

    def find(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(key, {}).get(namespace, {}).get(name)

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        ref = self._by_uid.get(uid)
        return None if ref is None else self.find(*ref)

    def iter(self, key: Key, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """Objects of a resource (one namespace, or all), as a snapshot safe against concurrent writes."""
        with self.lock:
            buckets = self._objects.get(key, {})
            if namespace is not None:
                items = list(buckets.get(namespace, {}).values())
            else:
                items = [obj for ns in buckets.values() for obj in ns.values()]
        return iter(items)

    def count(self, key: Key, namespace: str | None = None) -> int:
        buckets = self._objects.get(key, {})
        if namespace is not None:
            return len(buckets.get(namespace, {}))
        return sum(len(ns) for ns in buckets.values())

    def namespaces_with(self, key: Key) -> list[str]:
        return [ns for ns, objs in self._objects.get(key, {}).items() if objs]

    def dependents(self, owner_uid: str) -> list[dict[str, Any]]:
        with self.lock:
            refs = list(self._dependents.get(owner_uid, ()))
        return [obj for obj in (self.find(*ref) for ref in refs) if obj is not None]

    # ----------------------------------------------------------------- writes
    def create(
        self, rtype: ResourceType, namespace: str, obj: dict[str, Any], *, uid: str | None = None
    ) -> dict[str, Any]:
        """Store a new object (already defaulted and validated); fills uid, timestamps, resourceVersion.

        ``uid`` lets admission pre-assign the uid when defaults depend on it (a Job's selector does).
        """
        metadata = obj.setdefault("metadata", {})
        with self.lock:
            if rtype.namespaced:
                self._require_namespace(namespace)
            else:
                namespace = ""
            bucket = self._objects.setdefault(rtype.key, {}).setdefault(namespace, {})
            name = metadata.get("name") or ""
            if not name:
                prefix = metadata.get("generateName") or ""
                for _ in range(16):
                    name = prefix + "".join(
                        _NAME_SUFFIX_CHARS[b % len(_NAME_SUFFIX_CHARS)] for b in uuid.uuid4().bytes[:5]
                    )
                    if name not in bucket:
                        break
                metadata["name"] = name
            if name in bucket:
                raise apierrors.already_exists(rtype.group, rtype.plural, name)
            if rtype.namespaced:
                metadata["namespace"] = namespace
            else:
                metadata.pop("namespace", None)
            metadata["uid"] = uid or str(uuid.uuid4())
            metadata["creationTimestamp"] = rfc3339()
            metadata["generation"] = 1
            for stale in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                metadata.pop(stale, None)
            self._commit(rtype.key, namespace, name, obj, "ADDED", previous=None)
            return obj

    def replace(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        new: dict[str, Any],
        *,
        subresource: str | None = None,
        expect_rv: str | None = None,
    ) -> dict[str, Any]:
        """Write a new version of an existing object.

        ``subresource="status"`` keeps everything but ``status`` from the stored object; a write to the main
        resource keeps the stored ``status`` when the type has a status subresource (kube ignores it there).
        """
        with self.lock:
            current = self.get(rtype, namespace if rtype.namespaced else "", name)
            cur_meta = current["metadata"]
            if expect_rv and expect_rv != cur_meta["resourceVersion"]:
                raise apierrors.conflict(
                    rtype.group,
                    rtype.plural,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            new_meta = new.setdefault("metadata", {})
            _check_precondition(rtype, name, "UID", new_meta.get("uid"), cur_meta["uid"])
            if subresource == "all":
                pass  # trusted internal writers (scheduler binding) set spec and status in one version
            elif subresource == "status":
                merged = dict(current)
                merged["metadata"] = dict(cur_meta)
                if "status" in new:
                    merged["status"] = new["status"]
                new = merged
                new_meta = new["metadata"]
            else:
                if "status" in rtype.subresources:
                    if "status" in current:
                        new["status"] = current["status"]
                    else:
                        new.pop("status", None)
                for immutable in (
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "namespace",
                    "name",
                ):
                    if immutable in cur_meta:
                        new_meta[immutable] = cur_meta[immutable]
                    else:
                        new_meta.pop(immutable, None)
                if _spec_changed(current, new):
                    new_meta["generation"] = int(cur_meta.get("generation", 1)) + 1
            if (
                new_meta.get("deletionTimestamp")
                and not new_meta.get("finalizers")
                and cur_meta.get("finalizers")
                and not new_meta.get("deletionGracePeriodSeconds")
            ):
                # The last finalizer went: the object goes (graceful deletions are finished by their owner).
                self._remove(rtype.key, namespace if rtype.namespaced else "", name, new)
                return new
            self._commit(rtype.key, namespace if rtype.namespaced else "", name, new, "MODIFIED", previous=current)
            return new

    def mutate(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], bool | None],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any] | None:
        """Read-modify-write for controllers: ``change`` edits a private copy; returning False skips the write.

        Returns the stored object, or None when it is gone (controllers race with deletes; that is normal).
        """
        with self.lock:
            current = self.find(rtype.key, namespace if rtype.namespaced else "", name)
            if current is None:
                return None
            copy = clone(current)
            if change(copy) is False:
                return current
            return self.replace(rtype, namespace, name, copy, subresource=subresource)

    def delete(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        precondition_uid: str | None = None,
        precondition_rv: str | None = None,
        graceful: bool = False,
        grace_period_s: int | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Delete, honouring finalizers and propagation. Returns (object, removed_now).

        ``graceful`` marks objects whose removal someone else completes (a running pod: the kubelet stops its
        containers first), so they only get a deletionTimestamp here.
        """
        namespace = namespace if rtype.namespaced else ""
        with self.lock:
            current = self.get(rtype, namespace, name)
            cur_meta = current["metadata"]
            _check_precondition(rtype, name, "UID", precondition_uid, cur_meta["uid"])
            _check_precondition(rtype, name, "ResourceVersion", precondition_rv, cur_meta["resourceVersion"])
            policy = propagation or "Background"
            if policy == "Orphan":
                self._orphan_dependents(cur_meta["uid"])
            finalizers = list(cur_meta.get("finalizers") or ())
            if (
                policy == "Foreground"
                and self._dependents.get(cur_meta["uid"])
                and "foregroundDeletion" not in finalizers
            ):
                finalizers.append("foregroundDeletion")
            if finalizers or graceful:
                if cur_meta.get("deletionTimestamp") and finalizers == list(cur_meta.get("finalizers") or ()):
                    return current, False
                updated = clone(current)
                updated["metadata"]["finalizers"] = finalizers
                if not finalizers:
                    updated["metadata"].pop("finalizers")
                updated["metadata"].setdefault("deletionTimestamp", rfc3339())
                if grace_period_s is not None or graceful:
                    updated["metadata"]["deletionGracePeriodSeconds"] = (
                        grace_period_s if grace_period_s is not None else 30
                    )
                self._commit(rtype.key, namespace, name, updated, "MODIFIED", previous=current)
                return updated, False
            self._remove(rtype.key, namespace, name, current)
            return current, True

    def finish_delete(self, rtype: ResourceType, namespace: str, name: str) -> None:
        """Remove an object whose graceful deletion is complete (kubelet) regardless of grace bookkeeping."""
        with self.lock:
            current = self.find(rtype.key, namespace if rtype.namespaced else "", name)
            if current is None:
                return
            if current["metadata"].get("finalizers"):
                return
            self._remove(rtype.key, namespace if rtype.namespaced else "", name, current)

    # ----------------------------------------------------------------- watch
    def add_listener(self, listener: Callable[[WatchEvent], None]) -> None:
        """Register an internal listener; it is called under the store lock and must only enqueue."""
        with self.lock:
            self._listeners.append(listener)

    def watch(self, key: Key, namespace: str | None, since_rv: int | None) -> tuple[Watcher, list[WatchEvent]]:
        """Subscribe, and return the backlog to send first.

        ``since_rv`` None or 0: the backlog is a synthetic ADDED per existing object (kube's "start at most
        recent"). Otherwise the backlog is every event after ``since_rv``; a version older than the retained window
        raises 410 Expired.
        """
        with self.lock:
            watcher = Watcher(key=key, namespace=namespace)
            if not since_rv:
                backlog = [
                    WatchEvent(int(obj["metadata"]["resourceVersion"]), key, "ADDED", obj)
                    for obj in self.iter(key, namespace)
                ]
                backlog.sort(key=lambda e: e.rv)
            else:
                if since_rv < self._compacted_rv:
                    raise apierrors.expired(f"too old resource version: {since_rv} ({self._compacted_rv + 1})")
                backlog = [
                    e
                    for e in self._events_after(since_rv)
                    if e.key == key and (namespace is None or e.obj["metadata"].get("namespace", "") == namespace)
                ]
            self._watchers.setdefault(key, set()).add(watcher)
            return watcher, backlog

    def unwatch(self, watcher: Watcher) -> None:
        with self.lock:
            self._watchers.get(watcher.key, set()).discard(watcher)
            watcher.closed = True
        watcher.events.put(None)

    def close_all_watches(self) -> None:
        """End every open watch stream (server shutdown, or a fault-injected drop)."""
        with self.lock:
            watchers = [w for group in self._watchers.values() for w in group]
            self._watchers.clear()
        for watcher in watchers:
            watcher.closed = True
            watcher.events.put(None)

    def compact(self) -> None:
        """Forget the whole event window (fault injection: every resume now gets 410)."""
        with self.lock:
            self._compacted_rv = self._last_rv
            self._events.clear()

    # ----------------------------------------------------------------- internals
    def _events_after(self, rv: int) -> Iterable[WatchEvent]:
        events = self._events
        if not events or events[-1].rv <= rv:
            return ()
        # Binary search on the deque's rv (monotonic): deque indexing is O(n) at worst but fine at window size.
        lo, hi = 0, len(events)
        while lo < hi:
            mid = (lo + hi) // 2
            if events[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return list(itertools.islice(events, lo, None))

    def _require_namespace(self, namespace: str) -> None:
        if not namespace:
            raise apierrors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        ns = self.find(("", "namespaces"), "", namespace)
        if ns is None:
            raise apierrors.not_found("", "namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise apierrors.forbidden(
                f"unable to create new content in namespace {namespace} because it is being terminated"
            )

    def _commit(
        self,
        key: Key,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        etype: EventType,
        *,
        previous: dict[str, Any] | None,
    ) -> None:
        rv = next(self._rv)
        self._last_rv = rv
        metadata = obj["metadata"]
        metadata["resourceVersion"] = str(rv)
        self._objects.setdefault(key, {}).setdefault(namespace, {})[name] = obj
        ref = (key, namespace, name)
        self._by_uid[metadata["uid"]] = ref
        old_owners = _owner_uids(previous) if previous is not None else set()
        new_owners = _owner_uids(obj)
        for uid in old_owners - new_owners:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self._dependents[uid]
        for uid in new_owners - old_owners:
            self._dependents.setdefault(uid, set()).add(ref)
        self._publish(WatchEvent(rv, key, etype, obj, previous))

    def _remove(self, key: Key, namespace: str, name: str, obj: dict[str, Any]) -> None:
        rv = next(self._rv)
        self._last_rv = rv
        bucket = self._objects.get(key, {}).get(namespace, {})
        bucket.pop(name, None)
        if not bucket:
            self._objects.get(key, {}).pop(namespace, None)
        ref = (key, namespace, name)
        self._by_uid.pop(obj["metadata"]["uid"], None)
        for uid in _owner_uids(obj):
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self._dependents[uid]
        final = dict(obj)
        final["metadata"] = dict(obj["metadata"], resourceVersion=str(rv))
        self._publish(WatchEvent(rv, key, "DELETED", final))

    def _publish(self, event: WatchEvent) -> None:
        if len(self._events) == self._events.maxlen:
            self._compacted_rv = self._events[0].rv
        self._events.append(event)
        for watcher in self._watchers.get(event.key, ()):
            if watcher.namespace is None or watcher.namespace == event.obj["metadata"].get("namespace", ""):
                watcher.events.put(event)
        for listener in self._listeners:
            listener(event)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for ref in list(self._dependents.get(owner_uid, ())):
            dep = self.find(*ref)
            if dep is None:
                continue
            updated = clone(dep)
            refs = [r for r in updated["metadata"].get("ownerReferences", []) if r.get("uid") != owner_uid]
            if refs:
                updated["metadata"]["ownerReferences"] = refs
            else:
                updated["metadata"].pop("ownerReferences", None)
            self._commit(ref[0], ref[1], ref[2], updated, "MODIFIED", previous=dep)


def _owner_uids(obj: dict[str, Any]) -> set[str]:
    refs = obj["metadata"].get("ownerReferences")
    return {r["uid"] for r in refs if r.get("uid")} if refs else set()


def _spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Generation bumps on any change outside metadata and status (kube's rule for most kinds)."""
    for field_name in set(old) | set(new):
        if field_name in ("metadata", "status", "kind", "apiVersion"):
            continue
        if old.get(field_name) != new.get(field_name):
            return True
    return False


def _check_precondition(rtype: ResourceType, name: str, what: str, wanted: str | None, stored: str) -> None:
    """kube's 409 for a write that names a uid or resourceVersion (``what``) the stored object no longer has; a
    request that names none has no precondition."""
    if wanted and wanted != stored:
        raise apierrors.conflict(
            rtype.group,
            rtype.plural,
            name,
            f"Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {stored}",
        )
