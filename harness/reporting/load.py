"""Reading a run record back from disk for reports (DESIGN.md section 7).

Every report (JUnit, CSV, compare, history, conformance evidence) starts from :func:`load_record`, which reads
``reports/<run-id>/`` without trusting it to be complete: a run killed mid-way has no ``run.json`` and may end
``results.jsonl`` in the middle of a line. Such damage never stops a report; it is listed in
:attr:`RunRecordData.problems` as sentences a reader can act on, and every report shows them.

Results are normalised so that renderers can index them without ``.get`` chains: every key of the plugin's result
(``harness.pytest_plugin.pytest_runtest_makereport``) is present, with an empty default where the line lacked it.

CNCF AI conformance requirement ids of a result (:func:`requirements_of`) come from a ``requirements`` list in the
result (the plugin is to write it from ``@pytest.mark.conformance_requirement("<id>", ...)`` markers: it stores
marker *names* only under ``markers``, which cannot carry the id), or from a single ``requirement`` string.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.reporting.record import RESULTS, RUN_INFO

__all__ = ["STATUSES", "RunRecordData", "bulk", "load_record", "requirements_of"]

STATUSES = ("passed", "failed", "error", "skipped")

#: Keys every normalised result has, with the default used when a line lacks one.
_DEFAULTS: dict[str, Any] = {
    "id": "",
    "name": "",
    "doc": "",
    "area": "",
    "markers": [],
    "status": "error",
    "failure_kind": "",
    "message": "",
    "duration_s": 0.0,
    "workload": "",
    "params": {},
    "measurements": [],
    "checks": [],
    "emulated": False,
    "artifacts": "",
}
_ENDED_KEYS = ("finished_at", "exit_status")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecordData:
    """One run record as read from disk: run info, results in file order, and what was wrong with them."""

    path: Path
    info: dict[str, Any]
    results: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id") or self.path.name)

    @property
    def started_at(self) -> float | None:
        value = self.info.get("started_at")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    @property
    def finished_at(self) -> float | None:
        value = self.info.get("finished_at")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    @property
    def interrupted(self) -> bool:
        """True when the run did not reach session end (no run.json, or one without finished_at)."""
        return self.finished_at is None

    @property
    def target_kind(self) -> str:
        target = self.info.get("target")
        return str(target.get("kind", "")) if isinstance(target, Mapping) else ""

    @property
    def target_name(self) -> str:
        target = self.info.get("target")
        return str(target.get("name", "")) if isinstance(target, Mapping) else ""

    @property
    def profile_name(self) -> str:
        profile = self.info.get("profile")
        return str(profile.get("name", "")) if isinstance(profile, Mapping) else ""

    def counts(self) -> dict[str, int]:
        """Results per status, every status present (zero when none)."""
        out = dict.fromkeys(STATUSES, 0)
        for result in self.results:
            out[result["status"]] = out.get(result["status"], 0) + 1
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


def _read_info(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.exists():
        problems.append(
            f"{RUN_INFO} missing: run was interrupted before it ended (run info, target and profile are unknown)"
        )
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{RUN_INFO} could not be read ({exc}): run info ignored")
        return {}
    if not isinstance(info, dict):
        problems.append(f"{RUN_INFO} is not a JSON object: run info ignored")
        return {}
    missing = [key for key in _ENDED_KEYS if key not in info]
    if missing:
        problems.append(f"{RUN_INFO} lacks {', '.join(missing)}: run was interrupted before it ended")
    return info


def _read_results(path: Path, problems: list[str]) -> list[dict[str, Any]]:
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
    results: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        number = index + 1
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            if index == last_index and not text.endswith("\n"):
                problems.append(
                    f"{RESULTS} line {number} is truncated and was skipped (the run was interrupted while writing it)"
                )
            else:
                problems.append(f"{RESULTS} line {number} is not valid JSON and was skipped")
            continue
        if not isinstance(result, dict):
            problems.append(f"{RESULTS} line {number} is not a JSON object and was skipped")
            continue
        results.append(_normalise(result, number, problems))
    return results


def _normalise(result: dict[str, Any], number: int, problems: list[str]) -> dict[str, Any]:
    out = dict(result)
    for key, default in _DEFAULTS.items():
        value = out.get(key)
        if value is None:
            out[key] = default.copy() if isinstance(default, list | dict) else default
    if "status" not in result:
        problems.append(f"{RESULTS} line {number} ({out['id'] or 'no id'}) has no status: counted as error")
    elif out["status"] not in STATUSES:
        problems.append(f"{RESULTS} line {number} ({out['id']}) has unknown status {out['status']!r}: counted as error")
        out["status"] = "error"
    if not out["name"]:
        out["name"] = out["id"].rsplit("::", 1)[-1] if out["id"] else f"line-{number}"
    measurements = []
    for item in out["measurements"] if isinstance(out["measurements"], list) else []:
        # In place: the parsed JSON is ours, and a fleet record has 100,000 measurements to get through.
        value = item.get("value") if type(item) is dict else None
        if type(value) is int:
            value = item["value"] = float(value)
        if type(value) is not float or not item.get("metric") or not math.isfinite(value):
            problems.append(
                f"{RESULTS} line {number} ({out['id']}): a measurement without metric or numeric value was skipped"
            )
            continue
        labels = item.get("labels")
        if not labels:
            item["labels"] = {}
        elif type(labels) is not dict or not all(type(v) is str for v in labels.values()):
            item["labels"] = {str(k): str(v) for k, v in (labels.items() if isinstance(labels, Mapping) else ())}
        if type(item.get("unit")) is not str:
            item["unit"] = str(item.get("unit") or "")
        if type(item.get("emulated")) is not bool:
            item["emulated"] = bool(item.get("emulated"))
        measurements.append(item)
    out["measurements"] = measurements
    out["checks"] = [c for c in out["checks"] if isinstance(c, Mapping)] if isinstance(out["checks"], list) else []
    return out


def requirements_of(result: Mapping[str, Any]) -> list[str]:
    """The CNCF AI conformance requirement ids a result evidences, in order, without duplicates.

    Read from ``result["requirements"]`` (a list of ids, what the plugin is to write from
    ``conformance_requirement`` markers) and ``result["requirement"]`` (one id, or a list).
    """
    ids: list[str] = []
    for key in ("requirements", "requirement"):
        value = result.get(key)
        if isinstance(value, str):
            ids.append(value)
        elif isinstance(value, list | tuple):
            ids.extend(str(v) for v in value if v)
    return list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))
