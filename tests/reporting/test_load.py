"""Loading run records: complete, interrupted (no run.json, cut last line) and damaged ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reporting_records import RUN_INFO, result, sample_results, write_record

from harness.errors import ConfigError
from harness.reporting.load import load_record, requirements_of
from harness.reporting.schema import SCHEMA_VERSION, MeasurementEntry, RunInfo, TestResult


def test_complete_record_loads_without_problems(tmp_path: Path) -> None:
    record = load_record(write_record(tmp_path / RUN_INFO["run_id"], results=sample_results()))
    assert record.problems == []
    assert record.run_id == RUN_INFO["run_id"]
    assert record.started_at == RUN_INFO["started_at"] and not record.interrupted
    assert record.target_kind == "embedded" and record.profile_name == "cpu-only"
    assert [r.id for r in record.results] == [r["id"] for r in sample_results()]
    assert record.counts() == {"passed": 3, "failed": 2, "error": 1, "skipped": 1}


def test_missing_directory_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"run record .*nope does not exist"):
        load_record(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        load_record(tmp_path / "file")


def test_interrupted_run_without_run_json_and_with_cut_last_line(tmp_path: Path) -> None:
    run = write_record(
        tmp_path / "r-cut", info=None, results=sample_results()[:3], tail='{"id": "suites/x.py::t", "sta'
    )
    record = load_record(run)
    assert record.info == RunInfo() and record.interrupted
    assert record.run_id == "r-cut"  # falls back to the directory name
    assert len(record.results) == 3
    assert record.problems == [
        "run.json missing: run was interrupted before it ended (run info, target and profile are unknown)",
        "results.jsonl line 4 is truncated and was skipped (the run was interrupted while writing it)",
    ]


def test_run_json_without_end_keys_and_bad_lines_are_reported(tmp_path: Path) -> None:
    info = {k: v for k, v in RUN_INFO.items() if k not in ("finished_at", "exit_status", "target", "profile")}
    run = write_record(tmp_path / "r", info=info, results=[result()])
    with open(run / "results.jsonl", "a") as handle:
        handle.write("not json\n[1, 2]\n\n" + json.dumps({"id": "a::b", "status": "weird"}) + "\n")
        handle.write(json.dumps({"id": "a::c"}) + "\n")
    record = load_record(run)
    assert record.interrupted and record.target_kind == "" and record.profile_name == ""
    assert record.problems == [
        "run.json lacks finished_at, exit_status: run was interrupted before it ended",
        "results.jsonl line 2 is not valid JSON and was skipped",
        "results.jsonl line 3 is not a JSON object and was skipped",
        "results.jsonl line 5 (a::b) has unknown status 'weird': counted as error",
        "results.jsonl line 6 (a::c) has no status: counted as error",
    ]
    weird, bare = record.results[1], record.results[2]
    assert weird.status == "error" and bare.status == "error"
    assert bare.name == "c" and bare.measurements == [] and bare.params == {} and bare.checks == []


def test_unreadable_run_json_and_missing_results(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / "run.json").write_text("{broken")
    record = load_record(run)
    assert record.results == []
    assert record.problems[0].startswith("run.json could not be read (")
    assert record.problems[1] == "results.jsonl missing: no test result was recorded"


def test_bad_measurements_are_skipped_not_fatal(tmp_path: Path) -> None:
    bad = result(
        measurements=[
            {"metric": "bw", "value": "fast", "unit": "GB/s"},
            {"value": 1.0},
            {"metric": "bw", "value": 3, "unit": "GB/s", "labels": {"n": 1}},
        ]
    )
    record = load_record(write_record(tmp_path / "r", results=[bad]))
    assert record.results[0].measurements == [
        MeasurementEntry(metric="bw", value=3.0, unit="GB/s", labels={"n": "1"}, emulated=False)
    ]
    assert len(record.problems) == 2 and all("measurement without metric" in p for p in record.problems)


def test_requirements_come_from_requirements_list_or_requirement_key() -> None:
    def read(line: dict[str, object]) -> TestResult:
        return TestResult.from_json({"id": "t", "status": "passed", **line})

    assert requirements_of(read({"requirements": ["a", "b", "a"], "requirement": "c"})) == ["a", "b", "c"]
    assert requirements_of(read({"requirement": ["x", ""]})) == ["x"]
    assert requirements_of(read({"markers": ["conformance_requirement"]})) == []


def test_record_written_by_the_plugin_loads(pytester: pytest.Pytester) -> None:
    """A real record: the harness plugin in a pytester session (no target: --profile names the profile)."""
    pytester.makepyfile("""
        import pytest
        from harness.measurement import Measurement
        from harness.thresholds.assertions import assert_passed
        from harness.thresholds.evaluate import evaluate

        @pytest.mark.perf
        @pytest.mark.storage
        @pytest.mark.parametrize("bw", [450.0, 12.0])
        def test_fio(profile, record, bw):
            '''Sequential reads clear the bar.'''
            read = {"job": "randread", "direction": "read"}
            ms = [Measurement(metric="bw", value=bw, unit="MiB/s", labels={"job": "seqread", "direction": "read"}),
                  Measurement(metric="iops", value=5000.0, unit="IOPS", labels=read),
                  Measurement(metric="clat", value=2.0, unit="ms", labels={**read, "stat": "percentile",
                                                                          "percentile": "99"})]
            checks = evaluate(profile, "fio", ms)
            record.add(workload="fio", params={"bw": bw}, measurements=ms, checks=checks)
            assert_passed(checks)

        def test_skip(record):
            pytest.skip("requires gpu: none here")
    """)
    outcome = pytester.runpytest("--reports-dir", "reports", "--run-id", "real1", "--profile", "cpu-only")
    outcome.assert_outcomes(passed=1, failed=1, skipped=1)
    record = load_record(pytester.path / "reports" / "real1")
    assert record.problems == [] and record.run_id == "real1" and record.profile_name == "cpu-only"
    by_name = {r.name: r for r in record.results}
    failed = by_name["test_fio[12.0]"]
    assert failed.status == "failed" and failed.failure_kind == "threshold" and failed.area == "storage"
    assert failed.checks[0].threshold_id == "fio-seqread-bw" and failed.checks[0].status == "failed"
    assert by_name["test_skip"].status == "skipped"
    assert record.info.schema_version == SCHEMA_VERSION
    lines = (pytester.path / "reports" / "real1" / "results.jsonl").read_text().splitlines()
    assert all(json.loads(line)["schema_version"] == SCHEMA_VERSION for line in lines)
