"""Measurements as a table: ``results.csv`` and the pandas frame behind it (DESIGN.md section 7).

One row per measurement. Columns, in this order:

``run_id, test, area, workload, metric, value, unit, emulated, check_id, check_status, check_scope,
check_comparison, label.<key>...``

- ``test`` is the pytest node id; ``label.<key>`` holds each label (one column per key seen in the run, sorted;
  empty where a measurement lacks that label).
- ``check_*`` describe the check that judged this measurement, if any: ``check_scope`` is ``this`` when the
  check's judged labels are exactly this measurement's (an ``each`` check, or the worst/min/max one of an
  aggregate), ``aggregate`` when the check's label selector covers this measurement but judged a reduction
  (a mean) or another measurement (the worst of several). Several checks on one measurement: the exact one wins,
  then the worst status (failed, no-data, warned, passed).

:func:`measurement_rows` yields the same rows as plain dicts without pandas; compare and history use it, so
that ``report compare`` does not pay for importing pandas (DESIGN.md section 8: heavy imports are lazy).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.reporting.atomic import write_atomic
from harness.reporting.load import RunRecordData
from harness.reporting.schema import CheckEntry

if TYPE_CHECKING:
    import pandas

__all__ = ["BASE_COLUMNS", "LABEL_PREFIX", "CheckMatcher", "measurement_rows", "to_frame", "write_csv"]

BASE_COLUMNS = (
    "run_id",
    "test",
    "area",
    "workload",
    "metric",
    "value",
    "unit",
    "emulated",
    "check_id",
    "check_status",
    "check_scope",
    "check_comparison",
)
LABEL_PREFIX = "label."
_STATUS_RANK = {"failed": 3, "no-data": 2, "warned": 1, "passed": 0}


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """The serialised selector of a check (``Check.to_dict()['selector']``) against measurement labels."""
    for key, want in selector.items():
        have = labels.get(key)
        if have is None:
            return False
        if want == "*":
            continue
        if isinstance(want, list):
            if have not in {str(v) for v in want}:
                return False
        elif have != str(want):
            return False
    return True


class CheckMatcher:
    """Finds the check of one result that judged a measurement (see the module docstring for the rule).

    Indexed so that a result with one ``each`` check per node (thousands of checks with the same selector) costs
    a dict lookup plus one test per *distinct* selector, not a scan of every check, per measurement.
    """

    def __init__(self, checks: Sequence[CheckEntry]) -> None:
        self._checks = [c for c in checks if c.status != "no-data"]  # no-data matched nothing
        self._exact: dict[tuple[str, frozenset[tuple[str, str]]], list[CheckEntry]] | None = None
        # metric -> [(selector, its checks, their comparison senses)], one entry per distinct selector
        self._selectors: dict[str, list[tuple[Mapping[str, Any], list[CheckEntry], frozenset[str]]]] = {}
        groups: dict[tuple[str, str], tuple[Mapping[str, Any], list[CheckEntry], set[str]]] = {}
        for check in self._checks:
            selector = check.selector
            group_key = (check.metric, repr(selector))  # Check.to_dict writes selectors sorted
            group = groups.get(group_key)
            if group is None:
                group = groups[group_key] = (selector, [], set())
            group[1].append(check)
            if check.comparison:
                group[2].add(check.comparison)
        for (metric, _), (group_selector, members, senses) in groups.items():
            self._selectors.setdefault(metric, []).append((group_selector, members, frozenset(senses)))

    def _exact_index(self) -> dict[tuple[str, frozenset[tuple[str, str]]], list[CheckEntry]]:
        if self._exact is None:
            self._exact = {}
            for check in self._checks:
                key = (check.metric, _label_key(check.labels))
                self._exact.setdefault(key, []).append(check)
        return self._exact

    def match(self, metric: str, labels: Mapping[str, str]) -> tuple[CheckEntry | None, str]:
        """``(check, scope)`` with scope ``this`` or ``aggregate``; ``(None, "")`` when no check covers it."""
        exact = self._exact_index().get((metric, _label_key(labels)))
        if exact:
            return max(exact, key=_rank), "this"
        selectors = self._selectors.get(metric, ())
        covering = [c for selector, members, _ in selectors if _selector_matches(selector, labels) for c in members]
        if covering:
            return max(covering, key=_rank), "aggregate"
        return None, ""

    def comparisons(self, metric: str, labels: Mapping[str, str]) -> frozenset[str]:
        """The comparison senses of every check covering the measurement (for compare's direction). A check
        covers the measurements its selector matches; its judged labels always satisfy its own selector."""
        out: frozenset[str] = frozenset()
        for selector, _, senses in self._selectors.get(metric, ()):
            if senses and _selector_matches(selector, labels):
                out = senses if not out else out | senses
        return out


def _label_key(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def _rank(check: CheckEntry) -> int:
    return _STATUS_RANK.get(check.status, 0)


def measurement_rows(record: RunRecordData) -> Iterator[dict[str, Any]]:
    """One dict per measurement with the :data:`BASE_COLUMNS` keys plus ``labels`` (a dict)."""
    run_id = record.run_id
    for result in record.results:
        if not result.measurements:
            continue
        matcher = CheckMatcher(result.checks)
        for m in result.measurements:
            check, scope = matcher.match(m.metric, m.labels)
            yield {
                "run_id": run_id,
                "test": result.id,
                "area": result.area,
                "workload": result.workload,
                "metric": m.metric,
                "value": m.value,
                "unit": m.unit,
                "emulated": m.emulated,
                "check_id": check.threshold_id if check else "",
                "check_status": check.status if check else "",
                "check_scope": scope,
                "check_comparison": check.comparison if check else "",
                "labels": m.labels,
            }


def to_frame(record: RunRecordData) -> pandas.DataFrame:
    """The measurements of ``record`` as a DataFrame (columns as in the module docstring)."""
    import pandas

    columns: dict[str, list[Any]] = {name: [] for name in BASE_COLUMNS}
    label_values: dict[str, list[Any]] = {}
    for count, row in enumerate(measurement_rows(record), 1):
        for name in BASE_COLUMNS:
            columns[name].append(row[name])
        for key, value in row["labels"].items():
            column = label_values.get(key)
            if column is None:
                column = label_values[key] = [None] * (count - 1)
            column.append(value)
        for column in label_values.values():
            if len(column) < count:
                column.append(None)
    for key in sorted(label_values):
        columns[LABEL_PREFIX + key] = label_values[key]
    frame = pandas.DataFrame(columns)
    frame["value"] = frame["value"].astype("float64")
    frame["emulated"] = frame["emulated"].astype("bool")
    return frame


def write_csv(record: RunRecordData, path: Path | str) -> Path:
    """Write ``results.csv`` (one row per measurement) and return its path; a run without measurements gets
    the header only."""
    return write_atomic(Path(path), to_frame(record).to_csv(index=False))
