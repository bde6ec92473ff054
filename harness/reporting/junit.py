"""``junit.xml`` from a run record, for CI test-report readers (DESIGN.md section 7).

Built with the ``junit-xml`` package, then post-processed with :mod:`xml.etree` for what it cannot express.

Layout: one ``<testsuite>`` per area (``group_by="area"``; results without an area fall back to their module),
per test module (``"module"``) or per CNCF AI conformance requirement (``"requirement"``, used by the evidence
writer). Each result is one ``<testcase>``: ``classname`` is the node id's module path plus class
(``suites/storage/test_fio.py::TestFio::test_seqread`` -> ``suites.storage.test_fio.TestFio``), ``name`` the test
name with its parameters, ``time`` its duration. A failed result gets ``<failure type="<failure kind>">`` whose
``message`` stands alone (every failing check's message, e.g. ``fio-seqread-bw: bw{job=seqread} = 12 MiB/s, bar
>= 100 MiB/s (source: ...)``); an error gets ``<error type="<failure kind>">`` (could not measure); a skip gets
``<skipped message="<reason>">``. ``<system-out>`` of each testcase lists its doc, measurements and checks.

Properties (measurements, checks, workload, parameters, requirement ids) come in two flavours:

- ``xunit1`` (default): a ``<properties>`` element inside each ``<testcase>`` holding every measurement and check
  of that test, with plain keys (what pytest's legacy ``junit_family=xunit1`` writes, and what GitLab, Jenkins'
  JUnit plugin and the GitHub test-report actions show next to a test case); run info (run id, target, profile,
  harness version and commit, record problems) are suite properties. The one element outside Jenkins xUnit's
  junit-10.xsd (``tests/data/junit-common-structure.xsd``) is that ``<properties>`` in a ``<testcase>``.
- ``xunit2``: valid against junit-10.xsd: each test's properties are suite properties named
  ``<test name> :: <key>`` (what the conformance evidence writes, for strict validators).
"""

from __future__ import annotations

import datetime
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.reporting.atomic import write_atomic
from harness.reporting.load import RunRecordData, requirements_of
from harness.reporting.schema import CheckEntry, MeasurementEntry, TestResult

__all__ = [
    "Case",
    "Suite",
    "classname_of",
    "failure_message",
    "junit_text",
    "module_of",
    "render_suites",
    "write_junit",
]

Flavor = Literal["xunit2", "xunit1"]
GroupBy = Literal["area", "module", "requirement"]

_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One ``<testcase>``: a result, the name and classname it is shown under, and extra properties."""

    result: TestResult
    name: str
    classname: str
    properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    name: str
    cases: list[Case] = field(default_factory=list)
    properties: tuple[tuple[str, str], ...] = ()


def module_of(nodeid: str) -> str:
    """``suites/storage/test_fio.py::T::t[x]`` -> ``suites.storage.test_fio``."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".py"):
        path = path[:-3]
    return path.replace("/", ".").replace("\\", ".").strip(".") or "tests"


def classname_of(nodeid: str) -> str:
    """The module path plus any classes of a node id (``suites.storage.test_fio.TestFio``)."""
    parts = nodeid.split("::")
    return ".".join([module_of(nodeid), *parts[1:-1]])


def number(value: float) -> str:
    """A value as text without losing digits: integral values without ``.0``, others as Python's shortest repr."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


def labels_text(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}" if labels else ""


def failure_message(result: TestResult) -> str:
    """One line that explains a failed or errored result on its own: the failing checks' messages, else the
    first line of the test's message, else its failure kind."""
    failing = [c for c in result.checks if c.failing]
    if failing:
        return "; ".join(c.message or _check_fallback(c) for c in failing)
    message = result.message.strip()
    if message:
        return message.splitlines()[0]
    kind = result.failure_kind or result.status or "failure"
    return f"{kind} (no message recorded)"


def _check_fallback(check: CheckEntry) -> str:
    unit = check.unit
    value = f" = {number(check.observed)} {unit}".rstrip() if check.observed is not None else ""
    if check.verdict_bar:
        bar_text = f", bar {check.verdict_bar}"
    else:
        bar_text = f", bar {check.comparison} {number(check.bar)} {unit}".rstrip() if check.bar is not None else ""
    return (
        f"{check.threshold_id or '?'}: {check.metric or '?'}{labels_text(check.labels)}"
        f"{value}{bar_text} (source: {check.source or '?'})"
    )


def _measurement_text(m: MeasurementEntry) -> str:
    return f"{number(m.value)} {m.unit}".rstrip() + (" [emulated]" if m.emulated else "")


def case_properties(result: TestResult) -> list[tuple[str, str]]:
    """The properties of one result: requirement ids, workload, parameters, failure kind, measurements, checks."""
    props: list[tuple[str, str]] = [("requirement", req) for req in requirements_of(result)]
    if result.workload:
        props.append(("workload", result.workload))
    props.extend((f"param.{k}", str(v)) for k, v in sorted(result.params.items()))
    if result.failure_kind:
        props.append(("failure_kind", result.failure_kind))
    if result.emulated:
        props.append(("emulated", "true"))
    for m in result.measurements:
        props.append((f"{m.metric}{labels_text(m.labels)}", _measurement_text(m)))
    for check in result.checks:
        props.append(
            (f"check.{check.threshold_id or '?'}", f"{check.status or '?'}: {check.message or _check_fallback(check)}")
        )
    return props


def _system_out(result: TestResult) -> str:
    lines = []
    if result.doc:
        lines.append(result.doc)
    if requirements_of(result):
        lines.append("requirements: " + ", ".join(requirements_of(result)))
    if result.workload:
        params = ", ".join(f"{k}={v}" for k, v in sorted(result.params.items()))
        lines.append(f"workload: {result.workload}" + (f" ({params})" if params else ""))
    if result.measurements:
        lines.append("measurements:")
        lines.extend(f"  {m.metric}{labels_text(m.labels)} = {_measurement_text(m)}" for m in result.measurements)
    if result.checks:
        lines.append("checks:")
        lines.extend(f"  [{c.status or '?'}] {c.message or _check_fallback(c)}" for c in result.checks)
    if result.artifacts:
        lines.append(f"artifacts: {result.artifacts}")
    return "\n".join(lines)


def run_properties(record: RunRecordData) -> list[tuple[str, str]]:
    """Suite properties describing the run: id, times, target, profile, harness version, and record problems."""
    info = record.info
    props = [("run_id", record.run_id)]
    for key, value in (
        ("harness_version", info.environment.harness_version),
        ("git_commit", info.environment.git_commit),
    ):
        if value:
            props.append((key, value))
    if record.started_at is not None:
        props.append(("started_at", _iso(record.started_at)))
    if record.finished_at is not None:
        props.append(("finished_at", _iso(record.finished_at)))
    for section, part in (("target", info.target), ("profile", info.profile)):
        if part is not None:
            props.extend((f"{section}.{k}", str(v)) for k, v in sorted(part.to_json().items()) if v not in (None, ""))
    props.extend((f"problem.{i}", problem) for i, problem in enumerate(record.problems, 1))
    return props


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _grouping(group_by: GroupBy) -> Callable[[TestResult], list[str]]:
    if group_by == "area":
        return lambda r: [r.area or module_of(r.id)]
    if group_by == "module":
        return lambda r: [module_of(r.id)]
    if group_by == "requirement":
        return lambda r: requirements_of(r) or ["no-requirement"]
    raise ValueError(f"group_by must be area, module or requirement, got {group_by!r}")


def group_results(record: RunRecordData, group_by: GroupBy = "area") -> list[Suite]:
    """Suites in first-seen order; with ``requirement``, a result mapped to two requirements is in both."""
    key_of = _grouping(group_by)
    suites: dict[str, Suite] = {}
    for result in record.results:
        for key in key_of(result):
            suite = suites.setdefault(key, Suite(name=key))
            suite.cases.append(Case(result=result, name=result.name, classname=classname_of(result.id)))
    return list(suites.values())


def render_suites(suites: Iterable[Suite], *, record: RunRecordData, flavor: Flavor = "xunit2") -> str:
    """The JUnit XML text for ``suites`` (the XML declaration included)."""
    import junit_xml

    if flavor not in ("xunit2", "xunit1"):
        raise ValueError(f"flavor must be xunit2 or xunit1, got {flavor!r}")
    suites = list(suites)
    if not suites:  # still a document that says which run it is and what was wrong with it
        suites = [Suite(name="k8s-ai-bench")]
    timestamp = _iso(record.started_at) if record.started_at is not None else None
    built = []
    for suite in suites:
        cases = []
        for case in suite.cases:
            result = case.result
            tc = junit_xml.TestCase(
                name=case.name,
                classname=case.classname,
                elapsed_sec=result.duration_s,
                stdout=_system_out(result) or None,
            )
            status = result.status
            if status == "failed":
                tc.add_failure_info(
                    message=failure_message(result),
                    output=result.message or None,
                    failure_type=result.failure_kind or "failure",
                )
            elif status == "error":
                tc.add_error_info(
                    message=failure_message(result),
                    output=result.message or None,
                    error_type=result.failure_kind or "error",
                )
            elif status == "skipped":
                tc.add_skipped_info(message=result.message or "skipped")
            cases.append(tc)
        built.append(junit_xml.TestSuite(suite.name, cases, timestamp=timestamp))
    text = junit_xml.to_xml_report_string(built, prettyprint=False)
    root = ET.fromstring(text)
    _post_process(root, suites, record=record, flavor=flavor)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _post_process(root: ET.Element, suites: list[Suite], *, record: RunRecordData, flavor: Flavor) -> None:
    """Drop what the common schema lacks, format times, and add the properties junit-xml cannot write."""
    root.attrib.pop("disabled", None)
    for key in ("tests", "failures", "errors"):
        root.set(key, root.get(key, "0"))
    root.set("name", f"k8s-ai-bench {record.run_id}")
    root.set("time", f"{float(root.get('time', 0) or 0):.3f}")
    common = run_properties(record)
    for suite_el, suite in zip(root.findall("testsuite"), suites, strict=True):
        suite_el.attrib.pop("disabled", None)
        suite_el.set("time", f"{float(suite_el.get('time', 0) or 0):.3f}")
        props_el = ET.Element("properties")
        for name, value in (*common, *suite.properties):
            _add_property(props_el, name, value)
        for case_el, case in zip(suite_el.findall("testcase"), suite.cases, strict=True):
            if case_el.get("time") is not None:
                case_el.set("time", f"{float(case_el.get('time') or 0):.3f}")
            props = [*case.properties, *case_properties(case.result)]
            if flavor == "xunit1" and props:
                case_props = ET.Element("properties")
                for name, value in props:
                    _add_property(case_props, name, value)
                case_el.insert(0, case_props)
            elif flavor == "xunit2":
                for name, value in props:
                    _add_property(props_el, f"{case.name} :: {name}", value)
        suite_el.insert(0, props_el)


def _xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold; printable text (nearly every property) skips the
    substitution, which a 1,000-file import calls a million times."""
    return text if text.isprintable() else _ILLEGAL_XML.sub("", text)


def _add_property(parent: ET.Element, name: str, value: str) -> None:
    ET.SubElement(parent, "property", {"name": _xml_safe(name), "value": _xml_safe(value)})


def junit_text(record: RunRecordData, *, group_by: GroupBy = "area", flavor: Flavor = "xunit1") -> str:
    """The ``junit.xml`` text of a record (see the module docstring)."""
    return render_suites(group_results(record, group_by), record=record, flavor=flavor)


def write_junit(
    record: RunRecordData, path: Path | str, *, group_by: GroupBy = "area", flavor: Flavor = "xunit1"
) -> Path:
    """Write ``junit.xml`` for ``record`` to ``path`` and return the path."""
    return write_atomic(Path(path), junit_text(record, group_by=group_by, flavor=flavor))
