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
from typing import Any, Literal

from harness.reporting.atomic import write_atomic
from harness.reporting.load import RunRecordData, requirements_of

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
_FAILING_CHECKS = ("failed", "no-data")


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One ``<testcase>``: a result, the name and classname it is shown under, and extra properties."""

    result: Mapping[str, Any]
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


def failure_message(result: Mapping[str, Any]) -> str:
    """One line that explains a failed or errored result on its own: the failing checks' messages, else the
    first line of the test's message, else its failure kind."""
    failing = [c for c in result.get("checks", ()) if c.get("status") in _FAILING_CHECKS]
    if failing:
        return "; ".join(str(c.get("message") or _check_fallback(c)) for c in failing)
    message = str(result.get("message") or "").strip()
    if message:
        return message.splitlines()[0]
    kind = result.get("failure_kind") or result.get("status") or "failure"
    return f"{kind} (no message recorded)"


def _check_fallback(check: Mapping[str, Any]) -> str:
    observed = check.get("observed")
    value = f" = {number(observed)} {check.get('unit') or ''}".rstrip() if isinstance(observed, int | float) else ""
    bar = check.get("bar")
    bar_text = (
        f", bar {check.get('comparison') or ''} {number(bar)} {check.get('unit') or ''}".rstrip()
        if isinstance(bar, int | float)
        else ""
    )
    return (
        f"{check.get('threshold_id', '?')}: {check.get('metric', '?')}{labels_text(check.get('labels') or {})}"
        f"{value}{bar_text} (source: {check.get('source', '?')})"
    )


def case_properties(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The properties of one result: requirement ids, workload, parameters, failure kind, measurements, checks."""
    props: list[tuple[str, str]] = [("requirement", req) for req in requirements_of(result)]
    if result.get("workload"):
        props.append(("workload", str(result["workload"])))
    props.extend((f"param.{k}", str(v)) for k, v in sorted((result.get("params") or {}).items()))
    if result.get("failure_kind"):
        props.append(("failure_kind", str(result["failure_kind"])))
    if result.get("emulated"):
        props.append(("emulated", "true"))
    for m in result.get("measurements", ()):
        value = f"{number(m['value'])} {m['unit']}".rstrip() + (" [emulated]" if m.get("emulated") else "")
        props.append((f"{m['metric']}{labels_text(m['labels'])}", value))
    for check in result.get("checks", ()):
        props.append(
            (
                f"check.{check.get('threshold_id', '?')}",
                f"{check.get('status', '?')}: {check.get('message') or _check_fallback(check)}",
            )
        )
    return props


def _system_out(result: Mapping[str, Any]) -> str:
    lines = []
    if result.get("doc"):
        lines.append(str(result["doc"]))
    if requirements_of(result):
        lines.append("requirements: " + ", ".join(requirements_of(result)))
    if result.get("workload"):
        params = ", ".join(f"{k}={v}" for k, v in sorted((result.get("params") or {}).items()))
        lines.append(f"workload: {result['workload']}" + (f" ({params})" if params else ""))
    if result.get("measurements"):
        lines.append("measurements:")
        lines.extend(
            f"  {m['metric']}{labels_text(m['labels'])} = {number(m['value'])} {m['unit']}".rstrip()
            + (" [emulated]" if m.get("emulated") else "")
            for m in result["measurements"]
        )
    if result.get("checks"):
        lines.append("checks:")
        lines.extend(f"  [{c.get('status', '?')}] {c.get('message') or _check_fallback(c)}" for c in result["checks"])
    if result.get("artifacts"):
        lines.append(f"artifacts: {result['artifacts']}")
    return "\n".join(lines)


def run_properties(record: RunRecordData) -> list[tuple[str, str]]:
    """Suite properties describing the run: id, times, target, profile, harness version, and record problems."""
    info = record.info
    props = [("run_id", record.run_id)]
    for key in ("harness_version", "git_commit"):
        if info.get(key):
            props.append((key, str(info[key])))
    if record.started_at is not None:
        props.append(("started_at", _iso(record.started_at)))
    if record.finished_at is not None:
        props.append(("finished_at", _iso(record.finished_at)))
    for section in ("target", "profile"):
        value = info.get(section)
        if isinstance(value, Mapping):
            props.extend((f"{section}.{k}", str(v)) for k, v in sorted(value.items()) if v not in (None, ""))
    props.extend((f"problem.{i}", problem) for i, problem in enumerate(record.problems, 1))
    return props


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _grouping(group_by: GroupBy) -> Callable[[Mapping[str, Any]], list[str]]:
    if group_by == "area":
        return lambda r: [r.get("area") or module_of(str(r.get("id", "")))]
    if group_by == "module":
        return lambda r: [module_of(str(r.get("id", "")))]
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
            suite.cases.append(Case(result=result, name=str(result["name"]), classname=classname_of(str(result["id"]))))
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
                elapsed_sec=float(result.get("duration_s") or 0.0),
                stdout=_system_out(result) or None,
            )
            status = result.get("status")
            if status == "failed":
                tc.add_failure_info(
                    message=failure_message(result),
                    output=str(result.get("message") or "") or None,
                    failure_type=str(result.get("failure_kind") or "failure"),
                )
            elif status == "error":
                tc.add_error_info(
                    message=failure_message(result),
                    output=str(result.get("message") or "") or None,
                    error_type=str(result.get("failure_kind") or "error"),
                )
            elif status == "skipped":
                tc.add_skipped_info(message=str(result.get("message") or "skipped"))
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
