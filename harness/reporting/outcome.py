"""A run's outcome, one word and one exit code, decided in one place for the summary line, run.json, the report
banner and the history view, so that none of them can call a run PASS that another calls INTERRUPTED.

The rule that makes the gate honest: PASS needs at least one test that ran and nothing that failed or errored, in a
run that ended by itself. A run stopped by a signal is INTERRUPTED, one ended by a lost target or an unwritable
record is ABORTED, and one in which no test ran (none selected, or every one skipped) is NO-TESTS.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.reporting.schema import RunInfo

__all__ = ["EXIT_CODES", "Ended", "Outcome", "outcome", "outcome_of_record"]


class Ended(StrEnum):
    """How a run ended (``run.json`` key ``ended_by``)."""

    COMPLETED = "completed"  # every selected test ran
    INTERRUPTED = "interrupted"  # SIGINT or SIGTERM (Ctrl-C, a CI cancel)
    TARGET_LOST = "target-lost"  # the API server stopped answering mid-run
    RECORD_WRITE_FAILED = "record-write-failed"  # the run record could not be written (disk full)
    INTERNAL_ERROR = "internal-error"  # pytest or the harness itself broke (its traceback is in the output)


class Outcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    NO_TESTS = "NO-TESTS"
    INTERRUPTED = "INTERRUPTED"
    ABORTED = "ABORTED"


#: Exit codes of ``k8s-ai-bench run`` (README and docs/nightly-ci.md have the same table). 2 (usage or
#: configuration) is decided before a run starts and has no outcome.
EXIT_CODES: Mapping[tuple[Outcome, Ended], int] = {
    (Outcome.PASS, Ended.COMPLETED): 0,
    (Outcome.FAIL, Ended.COMPLETED): 1,
    (Outcome.NO_TESTS, Ended.COMPLETED): 5,
    (Outcome.ABORTED, Ended.TARGET_LOST): 3,
    (Outcome.ABORTED, Ended.RECORD_WRITE_FAILED): 4,
    (Outcome.ABORTED, Ended.INTERNAL_ERROR): 1,
    (Outcome.INTERRUPTED, Ended.INTERRUPTED): 130,
}


def outcome(ended: Ended, counts: Mapping[str, int]) -> tuple[Outcome, int]:
    """The outcome and exit code of a run that ended as ``ended`` with these per-status result counts."""
    if ended is Ended.INTERRUPTED:
        found = Outcome.INTERRUPTED
    elif ended is not Ended.COMPLETED:
        found = Outcome.ABORTED
    elif counts.get("failed", 0) or counts.get("error", 0):
        found = Outcome.FAIL
    elif counts.get("passed", 0) == 0:
        found = Outcome.NO_TESTS
    else:
        found = Outcome.PASS
    return found, EXIT_CODES[(found, ended)]


def outcome_of_record(info: RunInfo, counts: Mapping[str, int]) -> Outcome | None:
    """The outcome a finished record states (``ended_by`` in run.json); None for records written before it was
    recorded, or by a run that did not reach its end (the report then says INCOMPLETE)."""
    try:
        ended = Ended(info.ended_by)
    except ValueError:
        return None
    return outcome(ended, counts)[0]
