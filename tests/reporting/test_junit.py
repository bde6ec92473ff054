"""junit.xml: suites, names, outcomes, properties; validity against the common JUnit schema."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from reporting_records import RUN_INFO, result, sample_results, write_record

from harness.reporting.junit import classname_of, failure_message, junit_text, module_of, write_junit
from harness.reporting.load import load_record
from harness.reporting.schema import TestResult

SCHEMA = Path(__file__).resolve().parent.parent / "data" / "junit-common-structure.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMA))


@pytest.fixture
def record(tmp_path: Path):
    return load_record(write_record(tmp_path / "r", results=sample_results()))


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in root.iter("testcase")}


def _suite_props(suite: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in suite.find("properties")}


def test_xunit2_is_valid_and_grouped_by_area(record, tmp_path: Path, schema) -> None:
    path = write_junit(record, tmp_path / "out" / "junit.xml", flavor="xunit2")
    schema.validate(str(path))
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and "disabled" not in root.attrib
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("7", "2", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["storage", "compute", "observability"]
    storage = suites["storage"]
    assert (storage.get("tests"), storage.get("failures"), storage.get("time")) == ("2", "1", "24.500")
    assert storage.get("timestamp") == "2026-01-01T00:00:00"
    assert suites["compute"].get("skipped") == "1" and suites["compute"].get("errors") == "1"


def test_testcase_names_classnames_and_outcomes(record) -> None:
    cases = _cases(ET.fromstring(junit_text(record)))
    passed = cases["test_fio[local-path]"]
    assert passed.get("classname") == "suites.storage.test_fio" and passed.get("time") == "12.250"
    assert passed.find("failure") is None and passed.find("error") is None
    failure = cases["test_fio[slow-class]"].find("failure")
    assert failure.get("type") == "threshold"
    assert failure.get("message").startswith(
        "fio-seqread-bw: bw{direction=read, job=seqread} = 12 MiB/s, bar >= 100 MiB/s (source: project floor"
    )
    error = cases["test_allreduce[2-nodes]"].find("error")
    assert cases["test_allreduce[2-nodes]"].get("classname") == "suites.compute.test_nccl.TestNccl"
    assert error.get("type") == "timeout" and error.get("message").startswith("timed out after 600 s")
    skipped = cases["test_gpu_visible"].find("skipped")
    assert skipped.get("message") == "requires gpu: no node has allocatable nvidia.com/gpu"
    conformance = cases["test_gang_all_or_nothing"].find("failure")
    assert conformance.get("type") == "conformance"
    assert conformance.get("message") == "AssertionError: 2 of 4 pods of the gang are Running (expected 0)"
    assert "assert 2 == 0" in conformance.text
    out = cases["test_fio[slow-class]"].find("system-out").text
    assert "bw{direction=read, job=seqread} = 12 MiB/s" in out and "[failed] fio-seqread-bw" in out


def test_xunit2_properties_carry_run_info_measurements_checks_and_requirements(record) -> None:
    root = ET.fromstring(junit_text(record, flavor="xunit2"))
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    storage = _suite_props(suites["storage"])
    assert storage["run_id"] == RUN_INFO["run_id"] and storage["target.kind"] == "embedded"
    assert storage["profile.name"] == "cpu-only" and storage["git_commit"] == RUN_INFO["git_commit"]
    assert storage["test_fio[slow-class] :: bw{direction=read, job=seqread}"] == "12 MiB/s"
    assert storage["test_fio[slow-class] :: check.fio-seqread-bw"].startswith("failed: fio-seqread-bw:")
    assert storage["test_fio[slow-class] :: param.storage_class"] == "local-path"
    obs = _suite_props(suites["observability"])
    assert obs["test_dcgm_labels :: gpu_util{node=n1}"] == "87 % [emulated]"
    names = [p.get("name") for p in suites["observability"].find("properties")]
    assert names.count("test_dcgm_labels :: requirement") == 2
    assert all(c.find("properties") is None for c in root.iter("testcase"))


def test_default_puts_each_measurement_and_check_in_its_testcase(record, tmp_path: Path) -> None:
    """What GitLab, Jenkins and GitHub reporters show per test case: the measurements and checks, by default."""
    root = ET.parse(write_junit(record, tmp_path / "junit.xml")).getroot()
    case = _cases(root)["test_fio[slow-class]"]
    props = dict((p.get("name"), p.get("value")) for p in case.find("properties"))
    assert props["bw{direction=read, job=seqread}"] == "12 MiB/s"
    assert props["check.fio-seqread-bw"].startswith("failed: fio-seqread-bw: bw{direction=read, job=seqread} = 12")
    assert props["param.storage_class"] == "local-path" and props["workload"] == "fio"
    suite_names = [p.get("name") for s in root.findall("testsuite") for p in s.find("properties")]
    assert "run_id" in suite_names and not [n for n in suite_names if " :: " in n]


def test_xunit1_puts_properties_in_testcases_and_is_otherwise_schema_valid(record, schema) -> None:
    root = ET.fromstring(junit_text(record, flavor="xunit1"))
    case = _cases(root)["test_pod_without_gpu_sees_none"]
    props = [(p.get("name"), p.get("value")) for p in case.find("properties")]
    assert props == [("requirement", "secure_accelerator_access")]
    assert not schema.is_valid(ET.tostring(root, encoding="unicode"))  # testcase properties are outside it
    for case in root.iter("testcase"):
        for props_el in case.findall("properties"):
            case.remove(props_el)
    schema.validate(ET.tostring(root, encoding="unicode"))


def test_group_by_module_and_requirement(record, schema) -> None:
    by_module = ET.fromstring(junit_text(record, group_by="module"))
    assert [s.get("name") for s in by_module.findall("testsuite")] == [
        "suites.storage.test_fio",
        "suites.compute.test_nccl",
        "suites.compute.test_gpu",
        "suites.compute.test_isolation",
        "suites.compute.test_gang",
        "suites.observability.test_dcgm",
    ]
    text = junit_text(record, group_by="requirement", flavor="xunit2")
    schema.validate(text)
    names = [s.get("name") for s in ET.fromstring(text).findall("testsuite")]
    assert names == [
        "no-requirement",
        "secure_accelerator_access",
        "gang_scheduling",
        "accelerator_metrics",
        "ai_service_metrics",
    ]
    with pytest.raises(ValueError, match="group_by"):
        junit_text(record, group_by="node")


def test_interrupted_empty_and_hostile_records(tmp_path: Path, schema) -> None:
    empty = load_record(write_record(tmp_path / "empty", info=None, results=[]))
    text = junit_text(empty, flavor="xunit2")
    schema.validate(text)
    root = ET.fromstring(text)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("0", "0", "0")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "k8s-ai-bench" and suite.get("tests") == "0"
    assert _suite_props(suite)["problem.1"].startswith("run.json missing")

    hostile = result(
        status="failed",
        message='bad \x1b[31mred\x1b[0m <tag> & "q"',
        failure_kind="",
        measurements=[{"metric": "m\x07", "value": 1.5, "unit": "ms", "labels": {"k": "<v>"}}],
    )
    cut = write_record(tmp_path / "cut", info=None, results=[hostile], tail='{"id"')
    text = junit_text(load_record(cut), flavor="xunit2")
    schema.validate(text)
    root = ET.fromstring(text)
    failure = root.find(".//failure")
    assert failure.get("type") == "failure" and failure.get("message") == 'bad [31mred[0m <tag> & "q"'
    props = _suite_props(root.find("testsuite"))
    assert props["problem.1"].startswith("run.json missing") and props["problem.2"].startswith("results.jsonl line 2")
    assert props["test_api_up :: m{k=<v>}"] == "1.5 ms"


def test_helpers() -> None:
    assert module_of("suites/a/test_b.py::C::test_d[x::y]") == "suites.a.test_b"
    assert classname_of("suites/a/test_b.py::C::test_d") == "suites.a.test_b.C"
    assert classname_of("test_x.py::test_y") == "test_x"

    def read(line: dict[str, Any]) -> TestResult:
        return TestResult.from_json({"id": "t", "status": "failed", **line})

    assert failure_message(read({"status": "error", "failure_kind": "harness"})) == "harness (no message recorded)"
    no_data = read({"checks": [{"status": "no-data", "message": "t1: no data for bw{job=x}"}, {"status": "passed"}]})
    assert failure_message(no_data) == "t1: no data for bw{job=x}"
    built = read(
        {
            "checks": [
                {
                    "status": "failed",
                    "threshold_id": "t",
                    "metric": "bw",
                    "labels": {"a": "1"},
                    "observed": 3.0,
                    "unit": "GB/s",
                    "comparison": ">=",
                    "bar": 5.0,
                    "source": "spec",
                }
            ]
        }
    )
    assert failure_message(built) == "t: bw{a=1} = 3 GB/s, bar >= 5 GB/s (source: spec)"
