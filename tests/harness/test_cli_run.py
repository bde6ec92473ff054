"""`k8s-ai-bench run` end to end: suites through pytest on the embedded target, record, reports, exit codes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "harness.cli"]
XSD = Path(__file__).resolve().parents[1] / "data" / "junit-common-structure.xsd"

SUITE = '''
import pytest
from harness.measurement import Measurement
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

def _fio(profile, record, mib_s):
    ms = [Measurement(metric="bw", value=mib_s, unit="MiB/s", labels={"job": "seqread", "direction": "read"})]
    checks = [c for c in evaluate(profile, "fio", ms) if c.threshold_id == "fio-seqread-bw"]
    record.add(workload="fio", measurements=ms, checks=checks)
    assert_passed(checks)

@pytest.mark.perf
@pytest.mark.storage
def test_fast_disk(profile, record):
    """Sequential reads clear the bar."""
    _fio(profile, record, 900.0)

@pytest.mark.perf
@pytest.mark.storage
def test_slow_disk(profile, record):
    """Sequential reads below the bar fail with the bar's source."""
    _fio(profile, record, 12.0)

@pytest.mark.gpu
@pytest.mark.compute
def test_gpu(target):
    """Needs a GPU."""
'''


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "suite_demo.py"
    suite.write_text(SUITE)
    return subprocess.run(
        [*CLI, "run", str(suite), "--reports-dir", str(tmp_path / "reports"), "--run-id", "r1", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )


def test_run_writes_a_complete_record_and_fails_on_a_failed_check(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "k8s-ai-bench FAIL: 1 passed, 1 failed, 0 errors, 1 skipped (run r1)" in done.stdout
    run_dir = tmp_path / "reports" / "r1"
    for name in ("report.html", "junit.xml", "results.csv", "results.jsonl", "run.json"):
        assert (run_dir / name).is_file(), name
        assert str(run_dir / name) in done.stdout or name in ("results.jsonl", "run.json")
    results = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert sorted(r["status"] for r in results) == ["failed", "passed", "skipped"]
    html = (run_dir / "report.html").read_text()
    assert "FAIL" in html and "fio-seqread-bw" in html
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert {r["value"] for r in rows} == {"900.0", "12.0"}
    info = json.loads((run_dir / "run.json").read_text())
    assert info["exit_status"] == 1 and info["target"]["kind"] == "embedded"
    assert (tmp_path / "reports" / "latest").resolve() == run_dir.resolve()


def test_junit_is_schema_valid(tmp_path: Path) -> None:
    xmlschema = pytest.importorskip("xmlschema", reason="xmlschema is not installed (pip install -e '.[test]')")
    _run(tmp_path)
    root = ET.parse(tmp_path / "reports" / "r1" / "junit.xml").getroot()
    cases = list(root.iter("testcase"))
    assert any(case.find("properties") is not None for case in cases)  # measurements and checks, per test case
    for case in cases:  # the one element outside junit-10.xsd (harness/reporting/junit.py)
        for props in case.findall("properties"):
            case.remove(props)
    xmlschema.XMLSchema(str(XSD)).validate(ET.tostring(root, encoding="unicode"))


def test_selection_that_passes_exits_0(tmp_path: Path) -> None:
    done = _run(tmp_path, "-k", "fast_disk")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "k8s-ai-bench PASS: 1 passed, 0 failed, 0 errors, 0 skipped" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--timeout-scale", "soon"), "--timeout-scale: must be a positive number"),
        (("--profile", "no-such-profile"), "no-such-profile"),
        (("--target", "kube"), "--target kube: needs --kube-context"),
    ],
)
def test_usage_and_config_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = _run(tmp_path, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_doctor_lists_what_runs_and_why_not(tmp_path: Path) -> None:
    suite = tmp_path / "suite_demo.py"
    suite.write_text(SUITE)
    done = subprocess.run(
        [*CLI, "doctor", str(suite)], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "target: embedded embedded" in done.stdout and "profile: cpu-only" in done.stdout
    assert "skip  suite_demo.py::test_gpu  (gpu: no node has allocatable nvidia.com/gpu" in done.stdout
    assert "2 of 3 tests will run on this target" in done.stdout
