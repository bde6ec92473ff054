"""results.csv and the DataFrame behind it: one row per measurement, labels as columns, the judging check."""

from __future__ import annotations

import csv
from pathlib import Path

from reporting_records import RUN_INFO, result, sample_results, write_record

from harness.reporting.load import load_record
from harness.reporting.schema import CheckEntry
from harness.reporting.tables import BASE_COLUMNS, CheckMatcher, to_frame, write_csv


def test_csv_rows_columns_and_check_status(tmp_path: Path) -> None:
    record = load_record(write_record(tmp_path / "r", results=sample_results()))
    path = write_csv(record, tmp_path / "out" / "results.csv")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        *BASE_COLUMNS,
        "label.direction",
        "label.job",
        "label.node",
        "label.percentile",
        "label.stat",
    ]
    assert len(rows) == 7  # 3 + 3 fio measurements, 1 DCGM one; results without measurements add none
    slow_bw = next(r for r in rows if r["test"].endswith("[slow-class]") and r["metric"] == "bw")
    assert slow_bw == {
        "run_id": RUN_INFO["run_id"],
        "test": "suites/storage/test_fio.py::test_fio[slow-class]",
        "area": "storage",
        "workload": "fio",
        "metric": "bw",
        "value": "12.0",
        "unit": "MiB/s",
        "emulated": "False",
        "check_id": "fio-seqread-bw",
        "check_status": "failed",
        "check_scope": "this",
        "check_comparison": ">=",
        "label.direction": "read",
        "label.job": "seqread",
        "label.node": "",
        "label.percentile": "",
        "label.stat": "",
    }
    clat = next(r for r in rows if r["metric"] == "clat")
    assert (clat["check_comparison"], clat["label.percentile"]) == ("<=", "99")
    gpu = next(r for r in rows if r["metric"] == "gpu_util")
    assert (gpu["emulated"], gpu["check_status"], gpu["label.node"]) == ("True", "", "n1")


def test_frame_types_and_empty_record(tmp_path: Path) -> None:
    frame = to_frame(load_record(write_record(tmp_path / "r", results=sample_results())))
    assert str(frame["value"].dtype) == "float64" and str(frame["emulated"].dtype) == "bool"
    assert frame.loc[frame["metric"] == "bw", "value"].tolist() == [450.0, 12.0]
    empty = load_record(write_record(tmp_path / "e", info=None, results=[result()]))
    path = write_csv(empty, tmp_path / "empty.csv")
    assert path.read_text().strip() == ",".join(BASE_COLUMNS)


def test_aggregate_checks_cover_measurements_they_did_not_judge() -> None:
    """A worst-of-nodes check judged node b; node a is covered by it (scope aggregate), c is outside its selector."""
    check = {
        "threshold_id": "t",
        "metric": "busbw",
        "status": "failed",
        "comparison": ">=",
        "labels": {"node": "b", "size": "8G"},
        "selector": {"size": ["8G", "16G"], "node": "*"},
    }
    warn = {
        "threshold_id": "w",
        "metric": "busbw",
        "status": "warned",
        "comparison": ">=",
        "labels": {"node": "b", "size": "8G"},
        "selector": {"size": "8G"},
    }
    no_data = {"threshold_id": "n", "metric": "busbw", "status": "no-data"}
    matcher = CheckMatcher([CheckEntry.from_json(c) for c in (check, warn, no_data)])
    judged, scope = matcher.match("busbw", {"node": "b", "size": "8G"})
    assert judged is not None and (judged.threshold_id, scope) == ("t", "this")  # worst status wins among exact
    covered, scope = matcher.match("busbw", {"node": "a", "size": "16G"})
    assert covered is not None and (covered.threshold_id, scope) == ("t", "aggregate")
    assert matcher.match("busbw", {"node": "c", "size": "1G"}) == (None, "")
    assert matcher.match("other", {}) == (None, "")
    assert matcher.comparisons("busbw", {"node": "a", "size": "8G"}) == {">="}
