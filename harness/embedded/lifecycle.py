"""Start and stop as a whole: the contract of the embedded cluster and of the node agent.

Why a base class: both start many parts (threads, servers, registrations, a pod network) and owe their callers the
same guarantees, which are easy to get subtly wrong when each writes them again: a second ``start`` is no second
start; a start that fails part-way (Ctrl-C included) stops what it had already started before the error propagates;
``stop`` may be called any number of times, also after a failed start; ``with`` starts and stops.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

__all__ = ["Lifecycle"]


class Lifecycle(ABC):
    """Subclasses say how to start (:meth:`_start`) and stop (:meth:`_stop`); this class says when."""

    _started: bool = False

    def start(self) -> Self:
        """Start once; on any failure :meth:`stop` runs before the error propagates."""
        if self._started:
            return self
        self._started = True
        started = False
        try:
            self._start()
            started = True
        finally:
            if not started:
                self.stop()
        return self

    def stop(self) -> None:
        """Stop what was started; nothing when not started (or already stopped)."""
        if not self._started:
            return
        self._started = False
        self._stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @abstractmethod
    def _start(self) -> None:
        """Start every part; may leave some started when it raises (:meth:`_stop` must cope with that)."""

    @abstractmethod
    def _stop(self) -> None:
        """Stop every part that was started."""
