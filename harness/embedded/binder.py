"""The scheduler's control loop: finds unbound pods, asks :mod:`harness.embedded.scheduler`, binds or explains.

Unschedulable pods get ``PodScheduled=False`` (reason Unschedulable, kube's message) and a FailedScheduling
event, and are retried whenever a node changes or a pod frees capacity -- the same triggers kube-scheduler's
queue uses, so a test can rely on a Pending pod being placed as soon as room appears. Pods held back by fault
injection (``pending_pod_prefixes``) are re-checked every ``_HELD_POLL_S`` and scheduled once no prefix holds them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from harness.embedded.events import record_event
from harness.embedded.faults import FaultInjector
from harness.embedded.objects import set_condition
from harness.embedded.podstate import pod_terminal
from harness.embedded.scheduler import NodeUsage, schedule
from harness.embedded.store import Store, WatchEvent
from harness.embedded.workqueue import WorkQueue

log = logging.getLogger(__name__)

_PODS = ("", "pods")
_NODES = ("", "nodes")
_NAMESPACES = ("", "namespaces")
# How often pods held Pending by fault injection are re-checked: the injector has no change hook to wake us.
_HELD_POLL_S = 0.1


class _PodsByNode(Mapping[str, Sequence[dict[str, Any]]]):
    """Read-only view node -> bound pods, materialised per node only when the scheduler asks."""

    def __init__(self, index: dict[str, dict[str, dict[str, Any]]]) -> None:
        self._index = index

    def __getitem__(self, node: str) -> Sequence[dict[str, Any]]:
        return list(self._index.get(node, {}).values())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._index))

    def __len__(self) -> int:
        return len(self._index)


class Binder:
    """Default scheduler (``schedulerName: default-scheduler``) of the embedded target."""

    def __init__(self, store: Store, *, faults: FaultInjector) -> None:
        self.store = store
        self.faults = faults
        self._queue: WorkQueue[tuple[str, str]] = WorkQueue("aibench-scheduler")
        self._usage = NodeUsage()
        self._bound: dict[str, dict[str, dict[str, Any]]] = {}  # node -> uid -> pod
        self._bound_node: dict[str, str] = {}  # uid -> node
        self._unschedulable: set[tuple[str, str]] = set()
        self._held: set[tuple[str, str]] = set()  # skipped by fault injection
        # Guards usage, bound pods and the retry sets. Taken inside the store lock by the listener, and alone by the
        # scheduling thread, which therefore computes a decision without holding the store lock (API writes go on).
        self._state = threading.RLock()
        self._next_held_check = 0.0
        self._pending = 0
        self._idle = threading.Condition()
        self._pods = store.registry.get("", "pods")
        store.add_listener(self._on_event)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for pod in self.store.iter(_PODS):
            self._track(pod)
            self._maybe_enqueue(pod)
        self._queue.start(self._run)

    def stop(self) -> None:
        self._queue.stop()

    def wait_idle(self, timeout_s: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    # ------------------------------------------------------------------ events (under the store lock: enqueue only)
    def _enqueue(self, key: tuple[str, str]) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(key)

    def _maybe_enqueue(self, pod: dict[str, Any]) -> None:
        spec = pod["spec"]
        if spec.get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return
        if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
            return
        if pod_terminal(pod):
            return
        self._enqueue((pod["metadata"]["namespace"], pod["metadata"]["name"]))

    def _retry_unschedulable(self) -> None:
        retry, self._unschedulable = self._unschedulable, set()
        for key in retry:
            self._enqueue(key)

    def _track(self, pod: dict[str, Any]) -> bool:
        """Keep usage in step with bound, non-terminal pods; True when capacity was freed."""
        uid = pod["metadata"]["uid"]
        node = pod["spec"].get("nodeName")
        active = node and not pod_terminal(pod)
        previous = self._bound_node.get(uid)
        if active:
            self._bound.setdefault(node, {})[uid] = pod
            if previous != node:
                self._usage.add(node, pod)
                self._bound_node[uid] = node
            return False
        if previous is not None:
            self._untrack(pod)
            return True
        return False

    def _untrack(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        node = self._bound_node.pop(uid, None)
        if node is not None:
            self._bound.get(node, {}).pop(uid, None)
            self._usage.remove(pod)

    def _on_event(self, event: WatchEvent) -> None:
        with self._state:
            self._apply_event(event)

    def _apply_event(self, event: WatchEvent) -> None:
        if event.key == _PODS:
            if event.type == "DELETED":
                freed = event.obj["metadata"]["uid"] in self._bound_node
                self._untrack(event.obj)
                key = (event.obj["metadata"]["namespace"], event.obj["metadata"]["name"])
                self._unschedulable.discard(key)
                self._held.discard(key)
                if freed:
                    self._retry_unschedulable()
                return
            if self._track(event.obj):
                self._retry_unschedulable()
            if event.type == "ADDED":
                self._maybe_enqueue(event.obj)
        elif event.key == _NODES:
            self._retry_unschedulable()

    # ------------------------------------------------------------------ work
    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def _release_held(self) -> None:
        """Requeue held pods whose fault-injection prefix has been removed."""
        self._next_held_check = time.monotonic() + _HELD_POLL_S
        with self._state:
            released = [key for key in self._held if not self.faults.keeps_pending(key[1])]
            self._held.difference_update(released)
        for key in released:
            self._enqueue(key)

    def _run(self) -> None:
        while True:
            if self._held and time.monotonic() >= self._next_held_check:
                try:
                    self._release_held()
                except Exception:
                    log.exception("re-checking pods held by fault injection failed")
            try:
                key = self._queue.get(timeout=_HELD_POLL_S if self._held else None)
            except queue.Empty:
                continue
            if key is None:
                return
            try:
                self._schedule_one(*key)
            except Exception:
                log.exception("scheduling %s/%s failed", *key)
            finally:
                self._done()

    def _schedule_one(self, namespace: str, name: str) -> None:
        pod = self.store.find(_PODS, namespace, name)
        if pod is None or pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return
        if self.faults.keeps_pending(name):
            log.info("fault injection keeps pod %s/%s Pending", namespace, name)
            with self._state:
                if not self._held:
                    self._next_held_check = time.monotonic() + _HELD_POLL_S
                self._held.add((namespace, name))
            return
        nodes = list(self.store.iter(_NODES))
        namespace_labels = {
            ns["metadata"]["name"]: ns["metadata"].get("labels") or {} for ns in self.store.iter(_NAMESPACES)
        }
        with self._state:
            decision = schedule(
                pod, nodes, _PodsByNode(self._bound), usage=self._usage, namespace_labels=namespace_labels
            )
            if decision.node_name is None:
                self._unschedulable.add((namespace, name))
        if decision.node_name is None:

            def unschedulable(p: dict[str, Any]) -> bool:
                return set_condition(
                    p.setdefault("status", {}),
                    "PodScheduled",
                    "False",
                    "Unschedulable",
                    decision.message,
                    probe_time=True,
                )

            updated = self.store.mutate(self._pods, namespace, name, unschedulable, subresource="status")
            if updated is not None:
                record_event(
                    self.store,
                    updated,
                    type_="Warning",
                    reason="FailedScheduling",
                    message=decision.message,
                    component="default-scheduler",
                )
            return
        node_name = decision.node_name

        def bind(p: dict[str, Any]) -> bool:
            if p["spec"].get("nodeName") or p["metadata"].get("deletionTimestamp"):
                return False  # bound or deleted since the decision: nothing to do
            p["spec"]["nodeName"] = node_name
            set_condition(p.setdefault("status", {}), "PodScheduled", "True")
            return True

        updated = self.store.mutate(self._pods, namespace, name, bind, subresource="all")
        if updated is not None and updated["spec"].get("nodeName") == node_name:
            record_event(
                self.store,
                updated,
                type_="Normal",
                reason="Scheduled",
                message=f"Successfully assigned {namespace}/{name} to {node_name}",
                component="default-scheduler",
            )
