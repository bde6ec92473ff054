"""A queue of work items and the one daemon thread that drains it, stopped by a ``None`` sentinel.

The scheduler's binder, the volume provisioner and the kubelets each take events under the store lock, queue
them and handle them on a thread of their own (so no API write waits on scheduling, provisioning or a pod
start). The queue, its thread and the stop protocol (put the sentinel, join, forget the thread) are the same for
all of them; what each does with an item (its ``run`` loop) is its own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

STOP_TIMEOUT_S = 5.0


class WorkQueue(Generic[T]):
    """Items of type ``T`` for one named worker thread; :meth:`get` returns ``None`` once :meth:`stop` was called."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: queue.SimpleQueue[T | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def put(self, item: T) -> None:
        self._items.put(item)

    def get(self, timeout: float | None = None) -> T | None:
        """The next item, ``None`` when the worker must stop; raises :class:`queue.Empty` after ``timeout``."""
        return self._items.get(timeout=timeout)

    def start(self, run: Callable[[], None]) -> None:
        """Run ``run`` (the worker's loop over :meth:`get`) on a daemon thread named after the queue."""
        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Tell the worker to stop and wait (a bounded time) for it; a queue never started is left as it is."""
        if self._thread is not None:
            self._items.put(None)
            self._thread.join(timeout=STOP_TIMEOUT_S)
            self._thread = None
