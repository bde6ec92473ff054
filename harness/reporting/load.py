"""Reading a run record back from disk for reports (DESIGN.md section 7).

Every report (JUnit, CSV, compare, history, conformance evidence) starts from :func:`load_record`, which reads
``reports/<run-id>/`` without trusting it to be complete: a run killed mid-way has no ``run.json`` and may end
``results.jsonl`` in the middle of a line. Such damage never stops a report; it is listed in
:attr:`RunRecordData.problems` as sentences a reader can act on, and every report shows them.

Lines become :class:`~harness.reporting.schema.TestResult` s and ``run.json`` a
:class:`~harness.reporting.schema.RunInfo` (the schema the writer uses too), so renderers read attributes, never
``.get`` chains; a value of the wrong type is defaulted and said in ``problems``.

CNCF AI conformance requirement ids of a result (:func:`requirements_of`) come from its ``requirements`` list (the
plugin writes it from ``@pytest.mark.conformance_requirement("<id>", ...)`` markers), or from an older single
``requirement`` string, both folded into :attr:`TestResult.requirements` when the line is read.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.reporting.record import RESULTS, RUN_INFO
from harness.reporting.schema import SCHEMA_VERSION, STATUSES, RunInfo, TestResult

__all__ = ["STATUSES", "RunRecordData", "bulk", "load_record", "requirements_of"]

_ENDED_KEYS = ("finished_at", "exit_status")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecordData:
    """One run record as read from disk: run info, results in file order, and what was wrong with them."""

    path: Path
    info: RunInfo
    results: list[TestResult]
    problems: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.info.run_id or self.path.name

    @property
    def started_at(self) -> float | None:
        return self.info.started_at

    @property
    def finished_at(self) -> float | None:
        return self.info.finished_at

    @property
    def interrupted(self) -> bool:
        """True when the run did not reach session end (no run.json, or one without finished_at)."""
        return self.finished_at is None

    @property
    def target_kind(self) -> str:
        return self.info.target.kind if self.info.target is not None else ""

    @property
    def target_name(self) -> str:
        return self.info.target.name if self.info.target is not None else ""

    @property
    def profile_name(self) -> str:
        return self.info.profile.name if self.info.profile is not None else ""

    def counts(self) -> dict[str, int]:
        """Results per status, every status present (zero when none)."""
        out = dict.fromkeys(STATUSES, 0)
        for result in self.results:
            out[result.status] = out.get(result.status, 0) + 1
        return out


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects (parsed results, compare
    keys). A fleet record is millions of dicts, lists and floats; with the collector on, CPython re-traverses
    that growing heap over and over, which doubled the time of loading and comparing two 50,000-measurement
    records. Nothing built under it forms cycles, so reference counting frees it all the same."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_record(run_dir: Path | str) -> RunRecordData:
    """Read ``run_dir`` (a ``reports/<run-id>/`` directory, or the ``reports/latest`` link to one).

    Raises :class:`ConfigError` naming the path when it is not a directory; anything wrong inside it (missing or
    unreadable ``run.json``, a truncated last line of ``results.jsonl``, lines that are not results) is reported
    in ``problems`` and skipped.
    """
    path = Path(run_dir)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise ConfigError(f"run record {path} {what} (expected a reports/<run-id>/ directory)")
    problems: list[str] = []
    info = _read_info(path / RUN_INFO, problems)
    with bulk():
        results = _read_results(path / RESULTS, problems)
    return RunRecordData(path=path, info=info, results=results, problems=problems)


def _read_info(path: Path, problems: list[str]) -> RunInfo:
    if not path.exists():
        problems.append(
            f"{RUN_INFO} missing: run was interrupted before it ended (run info, target and profile are unknown)"
        )
        return RunInfo(schema_version=SCHEMA_VERSION)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{RUN_INFO} could not be read ({exc}): run info ignored")
        return RunInfo()
    if not isinstance(data, dict):
        problems.append(f"{RUN_INFO} is not a JSON object: run info ignored")
        return RunInfo()
    missing = [key for key in _ENDED_KEYS if key not in data]
    if missing:
        problems.append(f"{RUN_INFO} lacks {', '.join(missing)}: run was interrupted before it ended")
    info = RunInfo.from_json(data)
    if info.schema_version > SCHEMA_VERSION:
        problems.append(
            f"{RUN_INFO} has schema version {info.schema_version}, newer than this harness reads "
            f"({SCHEMA_VERSION}): fields it does not know are kept but not shown"
        )
    return info


def _read_results(path: Path, problems: list[str]) -> list[TestResult]:
    if not path.exists():
        problems.append(f"{RESULTS} missing: no test result was recorded")
        return []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        problems.append(f"{RESULTS} could not be read ({exc})")
        return []
    lines = text.split("\n")
    # A complete file ends with "\n", so the last element is "" ; anything else there was cut off mid-write.
    last_index = len(lines) - 1 if lines[-1] else len(lines) - 2
    results: list[TestResult] = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        number = index + 1
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            if index == last_index and not text.endswith("\n"):
                problems.append(
                    f"{RESULTS} line {number} is truncated and was skipped (the run was interrupted while writing it)"
                )
            else:
                problems.append(f"{RESULTS} line {number} is not valid JSON and was skipped")
            continue
        if not isinstance(data, dict):
            problems.append(f"{RESULTS} line {number} is not a JSON object and was skipped")
            continue
        result = TestResult.from_json(data, where=f"{RESULTS} line {number}", problems=problems)
        if not data.get("name"):
            result.name = result.id.rsplit("::", 1)[-1] if result.id else f"line-{number}"
        results.append(result)
    return results


def requirements_of(result: TestResult) -> list[str]:
    """The CNCF AI conformance requirement ids a result evidences, in order, without duplicates."""
    return list(result.requirements)
