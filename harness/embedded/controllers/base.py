"""What every embedded controller shares: its context, the controller protocol, and pod bookkeeping.

Controllers read the store directly (it is in-process and consistent), so they need none of kube's informer
caches or "expectations": a pod created in one reconcile is visible to the next one. Reconciles are level-based
(they recompute everything from the current objects), which makes dropped or merged events harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from harness.embedded import apierrors
from harness.embedded.admission import AdmissionContext, create_admitted
from harness.embedded.events import EventKind, record_event
from harness.embedded.objects import clone, controller_ref, owner_reference
from harness.embedded.resources import ResourceType
from harness.embedded.store import Key, Store, WatchEvent

log = logging.getLogger(__name__)

PODS: Key = ("", "pods")
NODES: Key = ("", "nodes")
CONFIGMAPS: Key = ("", "configmaps")
ANY_KEY: Key = ("*", "*")  # in ``Controller.watches``: every resource (the garbage collector, namespaces)
# apps/v1's ControllerRevisionHashLabelKey: the template revision a DaemonSet's or StatefulSet's pod was made from.
REVISION_LABEL = "controller-revision-hash"

# Same shape as the API server's deletion hook, so one callable decides gracefulness for users and controllers.
DeletionHook = Callable[[ResourceType, dict[str, Any], int | None], bool]


def never_graceful(rtype: ResourceType, obj: dict[str, Any], grace_period_s: int | None) -> bool:
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkItem:
    """One unit of reconcile work: a controller and the object (namespace, name) it should look at."""

    controller: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerContext:
    """Everything a controller may touch, handed over by the manager (no module-level state anywhere)."""

    store: Store
    admission: AdmissionContext
    graceful_delete: DeletionHook = never_graceful
    root_ca_pem: str = ""  # published as kube-root-ca.crt in every namespace

    def rtype(self, key: Key) -> ResourceType:
        return self.store.registry.get(*key)

    def event(
        self, involved: dict[str, Any], reason: str, message: str, *, component: str, type_: EventKind = "Normal"
    ) -> None:
        record_event(self.store, involved, type_=type_, reason=reason, message=message, component=component)

    def create(self, rtype: ResourceType, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj`` as a client's request would be: admission (defaults, validation), then the store; the
        stored object, or ApiError (a terminating namespace, a name taken...)."""
        return create_admitted(self.store, self.admission, rtype, namespace, obj)

    # ------------------------------------------------------------------ pods
    def create_pod(
        self,
        owner: dict[str, Any],
        template: dict[str, Any],
        *,
        component: str,
        name: str | None = None,
        generate_name: str | None = None,
        extra_labels: dict[str, str] | None = None,
        extra_annotations: dict[str, str] | None = None,
        customize: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any] | None:
        """Create a pod from a template through admission, owned by ``owner``; records the event kube records.

        Returns None (after a FailedCreate Warning) when admission or the store refuse it.
        """
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        labels.update(extra_labels or {})
        annotations = dict(tmeta.get("annotations") or {})
        annotations.update(extra_annotations or {})
        metadata: dict[str, Any] = {"labels": labels, "ownerReferences": [owner_reference(owner)]}
        if annotations:
            metadata["annotations"] = annotations
        if name:
            metadata["name"] = name
        else:
            metadata["generateName"] = generate_name or f"{owner['metadata']['name']}-"
        if tmeta.get("finalizers"):
            metadata["finalizers"] = list(tmeta["finalizers"])
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": clone(template.get("spec") or {}),
        }
        if customize is not None:
            customize(pod)
        namespace = owner["metadata"].get("namespace", "")
        try:
            created = self.create(self.rtype(PODS), namespace, pod)
        except apierrors.ApiError as err:
            log.info("%s %s/%s: pod creation refused: %s", component, namespace, owner["metadata"]["name"], err)
            self.event(owner, "FailedCreate", f"Error creating: {err.message}", component=component, type_="Warning")
            return None
        self.event(owner, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}", component=component)
        return created

    def delete_pod(self, owner: dict[str, Any] | None, pod: dict[str, Any], *, component: str) -> bool:
        """Delete a pod (gracefully when the hook says so); False when it was already gone or terminating."""
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            return False
        rtype = self.rtype(PODS)
        try:
            self.store.delete(
                rtype,
                meta.get("namespace", ""),
                meta["name"],
                precondition_uid=meta.get("uid"),
                graceful=self.graceful_delete(rtype, pod, None),
            )
        except apierrors.ApiError as err:
            log.debug("%s: deleting pod %s/%s: %s", component, meta.get("namespace"), meta["name"], err.message)
            return False
        if owner is not None:
            self.event(owner, "SuccessfulDelete", f"Deleted pod: {meta['name']}", component=component)
        return True

    def owned(self, owner: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        """Objects of ``kind`` whose controller reference is ``owner`` (through the store's owner-uid index)."""
        uid = owner["metadata"]["uid"]
        out = []
        for obj in self.store.dependents(uid):
            if obj.get("kind") != kind:
                continue
            ref = controller_ref(obj)
            if ref is not None and ref.get("uid") == uid:
                out.append(obj)
        return out


class Controller(Protocol):
    """A reconciler. ``watches`` lists the resource keys whose events it wants; ``work_for`` maps one event to
    the objects to reconcile; ``reconcile`` returns seconds after which to look again (timers), or None."""

    name: str
    watches: tuple[Key, ...]

    def work_for(self, event: WatchEvent) -> Iterable[tuple[str, str]]: ...

    def reconcile(self, namespace: str, name: str) -> float | None: ...

    def resync(self) -> Iterable[tuple[str, str]]: ...


class ContextController:
    """A controller's one piece of state that every kind needs: the context the manager hands over.

    Controllers without a primary resource (the garbage collector, namespaces, scrape targets) build on this
    directly; the rest on :class:`PrimaryController`.
    """

    name: str
    watches: tuple[Key, ...]

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx


class PrimaryController(ContextController):
    """The usual controller: it reconciles objects of one ``primary`` resource (owner references name it ``kind``).

    It maps an event of the primary to that object and an event of an owned object to its owner
    (:func:`primary_and_owned`), and resyncs every primary object. ``reconcile`` has controller-runtime's shape:
    get the primary object, then :meth:`sync` it; subclasses implement ``sync`` and override what else differs.
    """

    primary: Key
    kind: str = ""

    def work_for(self, event: WatchEvent) -> list[tuple[str, str]]:
        return primary_and_owned(event, self.primary, self.kind, self.ctx.store)

    def resync(self) -> list[tuple[str, str]]:
        return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in self.ctx.store.iter(self.primary)]

    def reconcile(self, namespace: str, name: str) -> float | None:
        """Sync the primary object (namespace, name), or tell :meth:`primary_gone` that there is none.

        Objects the primary owned need nothing here when it is deleted: the garbage collector removes them.
        """
        obj = self.ctx.store.find(self.primary, namespace, name)
        if obj is None:
            self.primary_gone(namespace, name)
            return None
        return self.sync(namespace, name, obj)

    def sync(self, namespace: str, name: str, obj: dict[str, Any]) -> float | None:
        """Bring what ``obj`` (stored as namespace/name) controls in line with it; seconds after which to look again
        (a timer), or None."""
        raise NotImplementedError(f"{type(self).__name__} does not implement sync")

    def primary_gone(self, namespace: str, name: str) -> None:
        """The primary object is not (or no longer) stored: drop what this controller keeps about it, clean up what
        the garbage collector does not. Nothing by default."""


def owner_of(store: Store, obj: dict[str, Any], kind: str) -> tuple[str, str] | None:
    """(namespace, name) of the controlling owner of ``obj`` when it is of ``kind``.

    The name comes from the reference itself, so a pod's DELETED event still maps to its owner.
    """
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    return obj["metadata"].get("namespace", ""), ref.get("name", "")


def primary_and_owned(event: WatchEvent, primary: Key, kind: str, store: Store) -> list[tuple[str, str]]:
    """The usual mapping: events of the primary kind reconcile that object, events of owned objects the owner."""
    meta = event.obj["metadata"]
    if event.key == primary:
        return [(meta.get("namespace", ""), meta["name"])]
    owner = owner_of(store, event.obj, kind)
    if owner is None and event.prev is not None:
        owner = owner_of(store, event.prev, kind)
    return [owner] if owner is not None else []
