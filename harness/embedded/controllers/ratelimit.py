"""kube's controller rate limiters, for controllers that replace failed pods: without them a pod that fails at once
makes its controller create pods in a hot loop (about 1,000 pods in 8 s was measured before).

- :class:`ControllerRateLimiter` is client-go's ``DefaultControllerRateLimiter``: the larger of a per-item
  exponential back-off (5 ms doubling to 1000 s, reset by :meth:`forget`) and one token bucket shared by every item
  of the controller (10 per second, burst 100).
- :class:`Backoff` is client-go's ``flowcontrol.Backoff`` as the DaemonSet controller uses it for
  ``failedPodsBackoff`` (1 s doubling to 15 min per DaemonSet and node; an entry idle for twice the maximum starts
  over).
- :func:`slow_start_batch` is the ReplicaSet controller's ``slowStartBatch``: creates in batches of 1, 2, 4...,
  stopping at the first refusal, so a template the API server rejects costs one call, not ``replicas`` calls.

Clocks are injectable (monotonic seconds) so that tests check the schedules without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
Clock = Callable[[], float]

ITEM_BASE_S = 0.005
ITEM_MAX_S = 1000.0
BUCKET_QPS = 10.0
BUCKET_BURST = 100
FAILED_POD_BACKOFF_S = 1.0
FAILED_POD_BACKOFF_MAX_S = 15 * 60.0
SLOW_START_INITIAL_BATCH = 1


class ItemExponentialRateLimiter:
    """Per item: ``base * 2**failures`` capped at ``max_s``; :meth:`forget` resets the item."""

    def __init__(self, base_s: float = ITEM_BASE_S, max_s: float = ITEM_MAX_S) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        if failures > 60:  # 2**61 * base overflows any useful delay
            return self.max_s
        return float(min(self.base_s * 2**failures, self.max_s))

    def failures(self, item: Hashable) -> int:
        return self._failures.get(item, 0)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)


class TokenBucket:
    """``golang.org/x/time/rate`` reservation semantics: a token every ``1/qps`` s, ``burst`` saved up; the delay
    returned is when the reserved token becomes available."""

    def __init__(self, qps: float = BUCKET_QPS, burst: int = BUCKET_BURST, clock: Clock = time.monotonic) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def reserve(self) -> float:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps


class ControllerRateLimiter:
    """client-go's DefaultControllerRateLimiter: max(per-item exponential, shared token bucket)."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.items = ItemExponentialRateLimiter()
        self.bucket = TokenBucket(clock=clock)

    def when(self, item: Hashable) -> float:
        return max(self.items.when(item), self.bucket.reserve())

    def failures(self, item: Hashable) -> int:
        return self.items.failures(item)

    def forget(self, item: Hashable) -> None:
        self.items.forget(item)


@dataclass(slots=True)
class _Entry:
    backoff_s: float
    last_update: float


class Backoff:
    """client-go ``flowcontrol.Backoff``: :meth:`next` starts or doubles an entry; :meth:`in_backoff_since_update`
    says whether ``now`` is still inside the current step."""

    def __init__(
        self,
        initial_s: float = FAILED_POD_BACKOFF_S,
        max_s: float = FAILED_POD_BACKOFF_MAX_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.clock = clock
        self._entries: dict[Hashable, _Entry] = {}

    def next(self, key: Hashable, now: float) -> None:
        entry = self._entries.get(key)
        if entry is None or now - entry.last_update > 2 * self.max_s:
            self._entries[key] = _Entry(self.initial_s, now)
            return
        entry.backoff_s = min(entry.backoff_s * 2, self.max_s)
        entry.last_update = now

    def get(self, key: Hashable) -> float:
        entry = self._entries.get(key)
        return entry.backoff_s if entry is not None else 0.0

    def in_backoff_since_update(self, key: Hashable, now: float) -> bool:
        entry = self._entries.get(key)
        if entry is None or now - entry.last_update > 2 * self.max_s:
            return False
        return now - entry.last_update < entry.backoff_s

    def gc(self, now: float) -> None:
        """Drop entries idle for twice the maximum (kube's periodic ``GC``), so deleted DaemonSets leave nothing."""
        for key in [k for k, e in self._entries.items() if now - e.last_update > 2 * self.max_s]:
            del self._entries[key]


def slow_start_batch(count: int, create: Callable[[], T | None], initial: int = SLOW_START_INITIAL_BATCH) -> list[T]:
    """Call ``create`` up to ``count`` times in growing batches (1, 2, 4...); stop after a batch with a refusal
    (``None``). Returns what was created."""
    created: list[T] = []
    batch = min(count, initial)
    remaining = count
    while batch > 0:
        results = [create() for _ in range(batch)]
        made = [r for r in results if r is not None]
        created.extend(made)
        if len(made) < batch:
            break
        remaining -= batch
        batch = min(2 * batch, remaining)
    return created
