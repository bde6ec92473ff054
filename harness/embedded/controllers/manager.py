"""Runs the embedded controllers on one worker thread, fed by one store listener.

Why one thread: every controller reads and writes the same in-process store, reconciles are short, and a single
worker makes them trivially free of races with each other. Events are merged into a de-duplicated set of dirty
(controller, namespace, name) items before any reconcile runs, so a burst of 100 pod updates of one Job costs one
Job reconcile, not 100. Timers (a reconcile's "look again in N seconds": activeDeadlineSeconds, failure backoff)
sit in a heap; an optional periodic resync re-reconciles everything as a safety net.

:meth:`ControllerManager.wait_idle` is how tests and benchmarks wait for the control plane to settle instead of
sleeping: it returns once no event is queued and no reconcile is running or due (future timers do not count).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable

from harness.embedded import apierrors
from harness.embedded.admission import AdmissionContext
from harness.embedded.controllers.base import (
    ANY_KEY,
    Controller,
    ControllerContext,
    DeletionHook,
    WorkItem,
    never_graceful,
)
from harness.embedded.store import Key, Store, WatchEvent

log = logging.getLogger(__name__)

_MAX_ERROR_BACKOFF_S = 30.0


class ControllerManager:
    """Owns the controllers, their queue and their worker thread."""

    def __init__(
        self,
        store: Store,
        admission_ctx: AdmissionContext,
        *,
        resync_s: float = 60.0,
        graceful_delete: DeletionHook = never_graceful,
        job_backoff_s: float = 10.0,
        controllers: Iterable[str] | None = None,
        root_ca_pem: str = "",
    ) -> None:
        """``controllers`` limits which ones run (names as in :attr:`names`); all by default.

        ``job_backoff_s`` is the base of the Job controller's exponential delay before replacing failed pods
        (kube: 10 s doubling up to 6 min); tests pass 0.
        """
        # Imported here so that importing the package for the manager type alone stays cheap and acyclic.
        from harness.embedded.controllers.autoscaler import HorizontalPodAutoscalerController
        from harness.embedded.controllers.cronjob import CronJobController
        from harness.embedded.controllers.daemonset import DaemonSetController
        from harness.embedded.controllers.deployment import DeploymentController
        from harness.embedded.controllers.disruption import DisruptionController
        from harness.embedded.controllers.endpoints import EndpointsController
        from harness.embedded.controllers.endpointslice import EndpointSliceController
        from harness.embedded.controllers.gc import GarbageCollector
        from harness.embedded.controllers.job import JobController
        from harness.embedded.controllers.namespace import NamespaceController
        from harness.embedded.controllers.replicaset import ReplicaSetController, ReplicationControllerController
        from harness.embedded.controllers.scrape_targets import ScrapeTargetsController
        from harness.embedded.controllers.statefulset import StatefulSetController

        self.store = store
        self.ctx = ControllerContext(
            store=store, admission=admission_ctx, graceful_delete=graceful_delete, root_ca_pem=root_ca_pem
        )
        self.resync_s = resync_s
        every: list[Controller] = [
            JobController(self.ctx, backoff_base_s=job_backoff_s),
            ReplicaSetController(self.ctx),
            DeploymentController(self.ctx),
            DaemonSetController(self.ctx),
            StatefulSetController(self.ctx),
            EndpointsController(self.ctx),
            EndpointSliceController(self.ctx),
            CronJobController(self.ctx),
            ReplicationControllerController(self.ctx),
            DisruptionController(self.ctx),
            HorizontalPodAutoscalerController(self.ctx),
            GarbageCollector(self.ctx),
            NamespaceController(self.ctx),
            ScrapeTargetsController(self.ctx),
        ]
        wanted = set(controllers) if controllers is not None else None
        self.controllers: dict[str, Controller] = {c.name: c for c in every if wanted is None or c.name in wanted}
        self._routes: dict[Key, list[Controller]] = {}
        self._everything: list[Controller] = []
        for controller in self.controllers.values():
            for key in controller.watches:
                if key == ANY_KEY:
                    self._everything.append(controller)
                else:
                    self._routes.setdefault(key, []).append(controller)
        self._cond = threading.Condition()
        self._events: deque[WatchEvent] = deque()
        self._dirty: dict[WorkItem, None] = {}  # insertion-ordered set
        self._timers: list[tuple[float, int, WorkItem]] = []
        self._seq = itertools.count()
        self._errors: dict[WorkItem, int] = {}
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._listening = False

    @property
    def names(self) -> list[str]:
        return list(self.controllers)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Subscribe to the store and start the worker; existing objects get one reconcile each (a resync)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="embedded-controllers", daemon=True)
        if not self._listening:
            self.store.add_listener(self._on_event)
            self._listening = True
        self._enqueue_resync()
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the worker and join it; idempotent. The store listener stays but only enqueues (cheap)."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("controller worker did not stop within %.1fs", timeout_s)
        with self._cond:
            self._thread = None
            self._events.clear()

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no event is queued, no reconcile runs and none is due; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._events or self._busy or self._dirty or self._timer_due(time.monotonic()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))
            return True

    # ------------------------------------------------------------------ feeding
    def _on_event(self, event: WatchEvent) -> None:
        # Called under the store lock: enqueue only.
        if event.key not in self._routes and not self._everything:
            return
        with self._cond:
            if self._stopping and self._thread is None:
                return
            self._events.append(event)
            self._cond.notify_all()

    def _enqueue_resync(self) -> None:
        items: list[WorkItem] = []
        for controller in self.controllers.values():
            for namespace, name in controller.resync():
                items.append(WorkItem(controller=controller.name, namespace=namespace, name=name))
        with self._cond:
            for item in items:
                self._dirty[item] = None
            self._cond.notify_all()

    def _timer_due(self, now: float) -> bool:
        return bool(self._timers) and self._timers[0][0] <= now

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        next_resync = time.monotonic() + self.resync_s if self.resync_s > 0 else float("inf")
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    if self._events or self._dirty or self._timer_due(now):
                        break
                    if now >= next_resync:
                        break
                    wake = next_resync
                    if self._timers:
                        wake = min(wake, self._timers[0][0])
                    self._cond.wait(None if wake == float("inf") else max(0.0, wake - now))
                events = list(self._events)
                self._events.clear()
                now = time.monotonic()
                while self._timer_due(now):
                    _, _, item = heapq.heappop(self._timers)
                    self._dirty[item] = None
                self._busy = True
            try:
                if time.monotonic() >= next_resync:
                    next_resync = time.monotonic() + self.resync_s
                    self._enqueue_resync()
                self._route(events)
                self._drain_dirty()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _route(self, events: list[WatchEvent]) -> None:
        items: list[WorkItem] = []
        for event in events:
            for controller in (*self._routes.get(event.key, ()), *self._everything):
                try:
                    targets = list(controller.work_for(event))
                except Exception:
                    log.exception(
                        "controller %s failed to map %s %s %s",
                        controller.name,
                        event.type,
                        event.key,
                        event.obj.get("metadata", {}).get("name"),
                    )
                    continue
                items.extend(WorkItem(controller=controller.name, namespace=ns, name=n) for ns, n in targets)
        if items:
            with self._cond:
                for item in items:
                    self._dirty[item] = None

    def _drain_dirty(self) -> None:
        """Reconcile every dirty item once; new events they cause are routed on the next loop."""
        with self._cond:
            batch = list(self._dirty)
            self._dirty.clear()
        for item in batch:
            if self._stopping:
                return
            self._reconcile(item)

    def _reconcile(self, item: WorkItem) -> None:
        controller = self.controllers[item.controller]
        try:
            again = controller.reconcile(item.namespace, item.name)
        except apierrors.ApiError as err:
            again = self._retry_delay(item)
            log.info(
                "%s reconcile of %s/%s refused (%s %s): retrying in %.2fs",
                item.controller,
                item.namespace,
                item.name,
                err.code,
                err.message,
                again,
            )
        except Exception:
            again = self._retry_delay(item)
            log.exception(
                "%s reconcile of %s/%s failed; retrying in %.2fs", item.controller, item.namespace, item.name, again
            )
        else:
            self._errors.pop(item, None)
        if again is not None:
            with self._cond:
                heapq.heappush(self._timers, (time.monotonic() + max(0.0, again), next(self._seq), item))

    def _retry_delay(self, item: WorkItem) -> float:
        failures = self._errors.get(item, 0) + 1
        self._errors[item] = failures
        return min(_MAX_ERROR_BACKOFF_S, 0.05 * 2.0 ** min(failures, 10))
