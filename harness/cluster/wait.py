"""The one way the harness waits: :func:`wait_for` on a monotonic clock with failure predicates.

Every wait names what it awaits, is bounded (callers pass a timeout already scaled by ``--timeout-scale``),
polls with a short-then-longer interval (fast for quick jobs, cheap for long ones) and, on timeout, says what was
awaited and the last state it saw, so a timeout in a report explains itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import WaitTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_INTERVAL_S = 0.01
MAX_INTERVAL_S = 0.5
GROWTH = 1.25  # slow growth: short jobs are noticed within ~20% of their runtime


def wait_for(
    probe: Callable[[], T],
    *,
    timeout_s: float,
    describe: str,
    done: Callable[[T], bool] = bool,
    fail_if: Callable[[T], str | None] | None = None,
    state: Callable[[T], str] = repr,
) -> T:
    """Call ``probe`` until ``done(value)``; return that value.

    ``fail_if(value)`` returning a message stops the wait at once with that message (raised as the exception the
    predicate's caller expects: :class:`WaitTimeout` is reserved for running out of time, so a failure predicate
    raises ``FailedWait``). ``state(value)`` renders the last observed state for the timeout message.
    """
    deadline = time.monotonic() + timeout_s
    interval = FIRST_INTERVAL_S
    last: T | None = None
    seen = False
    while True:
        last = probe()
        seen = True
        if done(last):
            return last
        if fail_if is not None and (reason := fail_if(last)):
            raise FailedWait(f"{describe}: {reason}", last=last)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        log.debug("waiting for %s: %s", describe, state(last))
        time.sleep(min(interval, remaining))
        interval = min(interval * GROWTH, MAX_INTERVAL_S)
    shown = state(last) if seen and last is not None else "nothing observed"
    raise WaitTimeout(f"timed out after {timeout_s:g}s waiting for {describe}; last state: {shown}")


class FailedWait(Exception):
    """A failure predicate ended a wait early; ``last`` is the state that failed."""

    def __init__(self, message: str, *, last: object) -> None:
        super().__init__(message)
        self.last = last
