"""Fault injection for tests of the harness's retry and resync paths (a small API on the embedded object).

Real clusters rarely fail on demand; these knobs make the embedded target fail the same ways they do: throttling
(429 with Retry-After), server errors (500), slow or dropped watch streams, and compaction (410 on resume). Pod-level
faults (stuck Pending, failing or hanging containers) live with the scheduler and kubelet, which read them from here.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from harness.embedded import apierrors


@dataclass(slots=True)
class FaultInjector:
    """Mutable fault settings; every knob off by default. Thread-safe enough: plain attribute reads/writes."""

    error_rate: float = 0.0
    error_code: int = 500
    # When set, each injected error draws its code from these (e.g. (429, 500): throttling and server errors mixed).
    error_codes: tuple[int, ...] = ()
    error_methods: frozenset[str] = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
    error_path_contains: str = ""
    watch_delay: float = 0.0
    watch_drop_after: float | None = None
    # Pods whose name starts with one of these prefixes stay Pending (the scheduler skips them).
    pending_pod_prefixes: set[str] = field(default_factory=set)
    # Container name -> "fail" (exit 1 at once) or "hang" (never exits until killed); applied by the kubelet.
    container_faults: dict[str, str] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=lambda: random.Random(0))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Turn every fault off."""
        self.error_rate = 0.0
        self.error_code = 500
        self.error_codes = ()
        self.error_path_contains = ""
        self.watch_delay = 0.0
        self.watch_drop_after = None
        self.pending_pod_prefixes.clear()
        self.container_faults.clear()

    def request_error(self, method: str, path: str) -> apierrors.ApiError | None:
        """The error to answer this request with, if the dice say so."""
        if self.error_rate <= 0 or method not in self.error_methods:
            return None
        if self.error_path_contains and self.error_path_contains not in path:
            return None
        with self._lock:
            roll = self._rng.random()
            code = self._rng.choice(self.error_codes) if self.error_codes else self.error_code
        if roll >= self.error_rate:
            return None
        if code == 429:
            return apierrors.ApiError(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later (injected)",
                retry_after_s=1,
            )
        return apierrors.ApiError(code, "InternalError", "Internal error occurred: injected fault")

    def watch_delay_s(self) -> float:
        return self.watch_delay

    def watch_drop_deadline(self) -> float | None:
        """Monotonic time at which a watch opened now is cut, or None."""
        return None if self.watch_drop_after is None else time.monotonic() + self.watch_drop_after

    def keeps_pending(self, pod_name: str) -> bool:
        # A copy: tests edit the set while the scheduler thread reads it.
        return any(pod_name.startswith(prefix) for prefix in tuple(self.pending_pod_prefixes))
