"""The one assertion a performance test ends with (DESIGN.md section 3).

``assert_passed(checks)`` raises a single AssertionError whose message lists every failed check with its source
(and the likely cause where the profile knows one), so a red test in CI says what was measured, what the bar was,
and where the bar comes from, without opening the report. Warnings never fail; checks without data do.

Zero checks never pass. When no threshold applied the test is skipped, saying why ("measured, not judged:
profile cpu-only has no fio thresholds"), so the report shows the numbers were measured but not held to a bar;
when nothing was measured either, the test fails (missing data). One rule here, not a guard in every test.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from harness.thresholds.model import Check, Checks

__all__ = ["NOT_JUDGED", "assert_passed", "failure_message"]

#: The prefix of every skip reason for a test whose measurements no threshold judged (reports group by it).
NOT_JUDGED = "measured, not judged"


def failure_message(checks: Iterable[Check]) -> str | None:
    """The assertion message for ``checks``, or None when none of them counts as a failure."""
    checks = list(checks)
    failed = [c for c in checks if c.counts_as_failure]
    if not failed:
        return None
    head = f"{len(failed)} of {len(checks)} check{'s' if len(checks) != 1 else ''} failed:"
    return "\n".join([head, *(f"  {c.message}" for c in failed)])


def assert_passed(checks: Iterable[Check], *, note: str = "", verdicts: Iterable[Check] = ()) -> None:
    """Raise AssertionError listing each failed or no-data check, one per line::

        2 of 5 checks failed:
          h100-nccl-intra-busbw: busbw{op=all_reduce, size=17179869184} = 401.2 GB/s, bar >= 460 GB/s \
(source: ...); hint: ...
          h100-gemm-bf16: no data for tflops{dtype=bf16}

    With no check at all: fail when the evaluation was offered no measurement, else skip with
    ``measured, not judged: <why>`` (``note`` adds what the test knows besides, e.g. the transport verdict).

    ``verdicts`` are the test's verdict-rule checks (:mod:`harness.thresholds.verdicts`): they fail the test like
    any check, listed first, but passing verdicts do not make unjudged measurements judged (a test whose numbers
    no bar covers still skips, and says what the verdicts found).
    """
    given = checks
    checks = list(checks)
    judged = list(verdicts)
    message = failure_message([*judged, *checks])
    if message is not None:
        raise AssertionError(message)
    if checks:
        return
    if judged and not note:
        note = "; ".join(c.detail for c in judged if c.detail)
    why = getattr(given, "unjudged", "") or "no threshold applied to the measurements"
    suffix = f" ({note})" if note else ""
    if isinstance(given, Checks) and given.measured == 0:
        raise AssertionError(f"nothing was measured, so nothing could be judged: {why}{suffix}")
    pytest.skip(f"{NOT_JUDGED}: {why}{suffix}")
