"""Lifecycle (harness/embedded/lifecycle.py), the contract of the embedded cluster and the node agent: one start for
two calls, a failed start stops what it started before the error propagates, stop is idempotent."""

from __future__ import annotations

import pytest

from harness.embedded.lifecycle import Lifecycle


class _Parts(Lifecycle):
    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.running: list[int] = []
        self.starts = 0
        self.stops = 0

    def _start(self) -> None:
        self.starts += 1
        for part in range(3):
            if part == self.fail_at:
                raise KeyboardInterrupt  # Ctrl-C half-way through start-up
            self.running.append(part)

    def _stop(self) -> None:
        self.stops += 1
        self.running.clear()


def test_start_twice_is_one_start_and_stop_twice_is_one_stop() -> None:
    parts = _Parts()
    assert parts.start() is parts and parts.start() is parts
    assert parts.starts == 1 and parts.running == [0, 1, 2]
    parts.stop()
    parts.stop()
    assert parts.stops == 1 and parts.running == []


def test_a_failed_start_stops_what_it_started_and_the_error_propagates() -> None:
    parts = _Parts(fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        parts.start()
    assert parts.running == [] and parts.stops == 1
    parts.stop()  # safe after a failed start
    assert parts.stops == 1


def test_context_manager_starts_and_stops() -> None:
    with _Parts() as parts:
        assert parts.running == [0, 1, 2]
    assert parts.running == [] and parts.stops == 1


def test_stop_before_start_does_nothing() -> None:
    parts = _Parts()
    parts.stop()
    assert parts.stops == 0
