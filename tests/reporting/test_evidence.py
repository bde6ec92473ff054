"""CNCF AI conformance evidence: e2e.log, junit.xml, results.json (test2json), requirements.md/json."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema
from reporting_records import RUN_INFO, result, sample_results, write_record

from harness.reporting.evidence import REQUIREMENTS, evaluate_requirements, go_test_name, write_evidence
from harness.reporting.load import load_record

SCHEMA = Path(__file__).resolve().parent.parent / "data" / "junit-common-structure.xsd"
TEST2JSON_KEYS = {"Time", "Action", "Package", "Test", "Elapsed", "Output"}
TEST2JSON_ACTIONS = {"start", "run", "pause", "cont", "pass", "bench", "fail", "output", "skip"}


def _evidence(tmp_path: Path, results=None, info=RUN_INFO) -> dict[str, Path]:
    record = load_record(
        write_record(tmp_path / "r", info=info, results=sample_results() if results is None else results)
    )
    return write_evidence(record, tmp_path / "evidence")


def test_requirement_ids_and_names() -> None:
    ids = [r.id for r in REQUIREMENTS]
    for required in (
        "dra_support",
        "gang_scheduling",
        "secure_accelerator_access",
        "accelerator_metrics",
        "ai_service_metrics",
        "ai_inference",
        "robust_controller",
        "pod_autoscaling",
        "cluster_autoscaling",
        "workload_sandboxing",
    ):
        assert required in ids
    assert len(ids) == len(set(ids)) and {r.level for r in REQUIREMENTS} == {"MUST", "SHOULD"}
    assert go_test_name("secure_accelerator_access") == "TestSecureAcceleratorAccess"
    assert go_test_name("robust_controller") == "TestRobustCRDControllerOperation"
    assert go_test_name("pod_autoscaling") == "TestPodAutoscaling"
    assert go_test_name("my-new.req") == "TestMyNewReq"


def test_statuses(tmp_path: Path) -> None:
    results = [
        *sample_results(),
        result(
            id="s/t.py::test_err", name="test_err", status="error", failure_kind="target", requirement="ai_inference"
        ),
        result(id="s/t.py::test_ok", name="test_ok", requirement="ai_inference"),
        result(id="s/t.py::test_skip", name="test_skip", status="skipped", requirement="robust_controller"),
        result(id="s/t.py::test_typo", name="test_typo", requirement="gang_sheduling"),
    ]
    record = load_record(write_record(tmp_path / "r", results=results))
    by_id = {s.requirement.id: s for s in evaluate_requirements(record)}
    assert (
        by_id["secure_accelerator_access"].status == "implemented" and not by_id["secure_accelerator_access"].emulated
    )
    assert by_id["gang_scheduling"].status == "failed"
    assert by_id["ai_inference"].status == "error"  # one passed, one could not verify
    assert by_id["robust_controller"].status == "not-tested" and by_id["pod_autoscaling"].status == "not-tested"
    assert by_id["accelerator_metrics"].status == "implemented" and by_id["accelerator_metrics"].emulated
    assert not by_id["gang_sheduling"].known and by_id["gang_sheduling"].status == "implemented"
    assert list(by_id)[-1] == "gang_sheduling"


def test_files_and_e2e_log(tmp_path: Path) -> None:
    paths = _evidence(tmp_path)
    assert sorted(p.name for p in paths.values()) == [
        "e2e.log",
        "junit.xml",
        "requirements.json",
        "requirements.md",
        "results.json",
    ]
    log = paths["e2e.log"].read_text().splitlines()
    assert log[0] == f"# k8s-ai-bench 0.1.0 conformance evidence, run {RUN_INFO['run_id']}"
    embedded = (
        "target is the embedded one-machine cluster: this evidence exercises the suite, not a conformant platform"
    )
    assert f"# NOTE: {embedded}" in log
    start = log.index("=== RUN   TestSecureAcceleratorAccess")
    block = log[start : start + 10]
    assert block[2] == "=== RUN   TestSecureAcceleratorAccess/test_pod_without_gpu_sees_none"
    assert "        requirement: secure_accelerator_access (MUST, security)" in block
    assert "        doc: A pod without a GPU request sees no GPU device." in block
    assert "--- PASS: TestSecureAcceleratorAccess (0.50s)" in block
    assert "    --- PASS: TestSecureAcceleratorAccess/test_pod_without_gpu_sees_none (0.50s)" in block
    assert "        message: AssertionError: 2 of 4 pods of the gang are Running (expected 0)" in log
    assert "--- FAIL: TestGangScheduling (0.50s)" in log
    assert log[-2:] == ["FAIL", "FAIL\tk8s-ai-bench/suites\t300.000s"]
    assert not any("test_fio" in line for line in log)  # only requirement-mapped tests are evidence


def test_results_json_is_a_test2json_stream(tmp_path: Path) -> None:
    events = [json.loads(line) for line in _evidence(tmp_path)["results.json"].read_text().splitlines()]
    assert all(set(e) <= TEST2JSON_KEYS and e["Action"] in TEST2JSON_ACTIONS for e in events)
    assert events[0] == {"Time": "2026-01-01T00:00:00Z", "Action": "start", "Package": "k8s-ai-bench/suites"}
    assert events[-1] == {
        "Time": "2026-01-01T00:05:00Z",
        "Action": "fail",
        "Package": "k8s-ai-bench/suites",
        "Elapsed": 300.0,
    }
    ends = {e["Test"]: e["Action"] for e in events if e.get("Test") and e["Action"] in ("pass", "fail", "skip")}
    assert ends == {
        "TestGangScheduling/test_gang_all_or_nothing": "fail",
        "TestGangScheduling": "fail",
        "TestAcceleratorPerformanceMetrics/test_dcgm_labels": "pass",
        "TestAcceleratorPerformanceMetrics": "pass",
        "TestAIServiceMetrics/test_dcgm_labels": "pass",
        "TestAIServiceMetrics": "pass",
        "TestSecureAcceleratorAccess/test_pod_without_gpu_sees_none": "pass",
        "TestSecureAcceleratorAccess": "pass",
    }
    runs = [e["Test"] for e in events if e["Action"] == "run"]
    assert runs.index("TestGangScheduling") < runs.index("TestGangScheduling/test_gang_all_or_nothing")


def test_junit_is_valid_and_named_after_upstream_tests(tmp_path: Path) -> None:
    path = _evidence(tmp_path)["junit.xml"]
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(path))
    root = ET.parse(path).getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [
        "TestGangScheduling",
        "TestAcceleratorPerformanceMetrics",
        "TestAIServiceMetrics",
        "TestSecureAcceleratorAccess",
    ]
    props = {p.get("name"): p.get("value") for p in suites["TestGangScheduling"].find("properties")}
    assert props["requirement"] == "gang_scheduling" and props["requirement.status"] == "failed"
    case = suites["TestSecureAcceleratorAccess"].find("testcase")
    assert case.get("name") == "TestSecureAcceleratorAccess/test_pod_without_gpu_sees_none"
    assert case.get("classname") == "k8s-ai-bench/suites"


def test_requirements_md_and_json(tmp_path: Path) -> None:
    paths = _evidence(tmp_path)
    md = paths["requirements.md"].read_text()
    assert (
        "| `secure_accelerator_access` | MUST | security | implemented | 1/0/0/0 | "
        "`junit.xml#TestSecureAcceleratorAccess`, `e2e.log` |" in md
    )
    assert "| `accelerator_metrics` | MUST | observability | implemented (emulated) |" in md
    assert "| `robust_controller` | MUST | operator | not-tested | 0/0/0/0 |  |" in md
    data = json.loads(paths["requirements.json"].read_text())
    assert data["format"] == "k8s-ai-bench conformance requirements v1" and data["run_id"] == RUN_INFO["run_id"]
    gang = next(r for r in data["requirements"] if r["id"] == "gang_scheduling")
    assert gang["status"] == "failed" and gang["evidence"] == ["junit.xml#TestGangScheduling", "e2e.log"]
    assert gang["tests"][0]["failure_kind"] == "conformance"


def test_interrupted_record_without_mapped_tests(tmp_path: Path) -> None:
    paths = _evidence(tmp_path, results=[result()], info=None)
    log = paths["e2e.log"].read_text().splitlines()
    assert (
        "# NOTE: run.json missing: run was interrupted before it ended (run info, target and profile are unknown)"
        in log
    )
    assert log[-2:] == ["PASS", "ok  \tk8s-ai-bench/suites\t0.000s"]
    events = [json.loads(line) for line in paths["results.json"].read_text().splitlines()]
    assert [e["Action"] for e in events] == ["start", "output", "pass"] and "Time" not in events[0]
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(paths["junit.xml"]))
    assert "not-tested" in paths["requirements.md"].read_text()
