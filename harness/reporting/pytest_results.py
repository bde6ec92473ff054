"""A finished pytest test as its line of ``results.jsonl``: the schema's :class:`~harness.reporting.schema.TestResult`,
built straight from the test item and what the test recorded.

The plugin decides how a test ended (status, failure kind, message: that needs the harness's errors and the
cluster layer); this module says what the test was (id, doc, area, markers, conformance requirements) and what it
measured and judged, as the typed entries the reader builds too, so a line is written and read by the same code
with no dict in between. Checks enter through their own serialisation (``to_dict``, the format ``results.jsonl``
stores), read by :meth:`~harness.reporting.schema.CheckEntry.from_json` like any stored check.
"""

from __future__ import annotations

import pytest

from harness.reporting.record import TestRecord
from harness.reporting.schema import AREAS, CheckEntry, FailureKind, MeasurementEntry, Status, TestResult

__all__ = ["area_of", "result_of"]


def area_of(item: pytest.Item) -> str:
    """The first area marker of the test (``compute``, ``network``, ...), or empty."""
    return next((a for a in AREAS if item.get_closest_marker(a)), "")


def _doc(item: pytest.Item) -> str:
    obj = getattr(item, "obj", None)
    return (obj.__doc__ or "").strip() if obj is not None else ""


def _conformance_requirements(item: pytest.Item) -> list[str]:
    """The CNCF AI conformance requirement ids of ``conformance_requirement`` markers, each once, in order."""
    ids = (str(a).strip() for m in item.iter_markers("conformance_requirement") for a in m.args)
    return list(dict.fromkeys(i for i in ids if i))


def result_of(
    item: pytest.Item,
    record: TestRecord | None,
    *,
    status: Status,
    failure_kind: FailureKind | str,
    message: str,
    duration_s: float,
    api_retries: int,
) -> TestResult:
    """The result line of ``item``; ``record`` is what the test recorded (None: it did not ask for a record)."""
    recorded = record if record is not None else TestRecord()
    return TestResult(
        id=item.nodeid,
        name=item.name,
        status=str(status),
        doc=_doc(item),
        area=area_of(item),
        markers=sorted({m.name for m in item.iter_markers()}),
        requirements=_conformance_requirements(item),
        failure_kind=str(failure_kind),
        message=message,
        duration_s=round(duration_s, 4),
        workload=recorded.workload,
        params=dict(recorded.params),
        measurements=[MeasurementEntry.of(m) for m in recorded.measurements],
        checks=[CheckEntry.from_json(c.to_dict()) for c in recorded.checks],
        emulated=recorded.emulated,
        artifacts=recorded.artifacts,
        api_retries=api_retries,
    )
