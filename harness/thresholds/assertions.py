"""The one assertion a performance test ends with (DESIGN.md section 3).

``assert_passed(checks)`` raises a single AssertionError whose message lists every failed check with its source
(and the likely cause where the profile knows one), so a red test in CI says what was measured, what the bar was,
and where the bar comes from, without opening the report. Warnings never fail; checks without data do.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.thresholds.model import Check

__all__ = ["assert_passed", "failure_message"]


def failure_message(checks: Iterable[Check]) -> str | None:
    """The assertion message for ``checks``, or None when none of them counts as a failure."""
    checks = list(checks)
    failed = [c for c in checks if c.counts_as_failure]
    if not failed:
        return None
    head = f"{len(failed)} of {len(checks)} check{'s' if len(checks) != 1 else ''} failed:"
    return "\n".join([head, *(f"  {c.message}" for c in failed)])


def assert_passed(checks: Iterable[Check]) -> None:
    """Raise AssertionError listing each failed or no-data check, one per line::

        2 of 5 checks failed:
          h100-nccl-intra-busbw: busbw{op=all_reduce, size=17179869184} = 401.2 GB/s, bar >= 460 GB/s \
(source: ...); hint: ...
          h100-gemm-bf16: no data for tflops{dtype=bf16}
    """
    message = failure_message(checks)
    if message is not None:
        raise AssertionError(message)
