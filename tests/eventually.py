"""Polling for the harness's own tests (the suites get ``wait_for`` from the harness core instead)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T], *, timeout_s: float = 10.0, interval_s: float = 0.02, what: str = "") -> T:
    """Return the first truthy value of ``probe()``; fail the test naming ``what`` and the last value on timeout."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what or probe!r}; last value: {last!r}")
