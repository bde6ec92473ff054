"""report compare: keys, direction from checks, regressions, incompatible records, missing and new metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from reporting_records import RUN_INFO, fio_result, result, write_record

from harness.errors import ConfigError
from harness.reporting.compare import Verdict, compare, format_comparison, key_of, rows_as_dicts
from harness.reporting.load import load_record


def _plain(metric: str, value: float, unit: str = "s", **labels: str) -> dict:
    return {"metric": metric, "value": value, "unit": unit, "labels": labels, "emulated": False}


def _records(tmp_path: Path, base_results: list, new_results: list, *, new_info: dict | None = None):
    base = load_record(write_record(tmp_path / "base", info={**RUN_INFO, "run_id": "base"}, results=base_results))
    info = {**RUN_INFO, "run_id": "new", **(new_info or {})}
    new = load_record(write_record(tmp_path / "new", info=info, results=new_results))
    return base, new


def test_direction_comes_from_checks_and_gates_regressions(tmp_path: Path) -> None:
    base, new = _records(tmp_path, [fio_result(450.0, iops=5000.0)], [fio_result(400.0, iops=5200.0)])
    comparison = compare(base, new, fail_on_regression_pct=5.0)
    rows = {r.metric: r for r in comparison.rows}
    bw = rows["bw"]
    assert (bw.base, bw.new, bw.higher_is_better, bw.verdict) == (450.0, 400.0, True, Verdict.REGRESSION)
    assert bw.delta == -50.0 and bw.delta_pct == pytest.approx(-11.111, abs=1e-3) and bw.worse_pct > 11
    assert rows["iops"].verdict is Verdict.BETTER
    assert rows["clat"].verdict is Verdict.SAME and rows["clat"].higher_is_better is False
    assert comparison.exit_code == 1 and [r.metric for r in comparison.regressions] == ["bw"]
    lenient = compare(base, new, fail_on_regression_pct=20.0)
    assert lenient.exit_code == 0 and {r.metric: r.verdict for r in lenient.rows}["bw"] is Verdict.WORSE
    assert compare(base, new).exit_code == 0  # no gate, no regression


def test_lower_is_better_and_unknown_direction(tmp_path: Path) -> None:
    latency = {
        "threshold_id": "p99",
        "metric": "ttft",
        "status": "passed",
        "comparison": "<=",
        "labels": {"q": "p99"},
        "selector": {"q": "p99"},
    }
    base_r = result(
        workload="inference-server",
        checks=[latency],
        measurements=[_plain("ttft", 0.20, q="p99"), _plain("tokens", 100.0, "count")],
    )
    new_r = result(
        workload="inference-server",
        checks=[latency],
        measurements=[_plain("ttft", 0.25, q="p99"), _plain("tokens", 90.0, "count")],
    )
    base, new = _records(tmp_path, [base_r], [new_r])
    rows = {r.metric: r for r in compare(base, new, fail_on_regression_pct=10).rows}
    assert rows["ttft"].verdict is Verdict.REGRESSION and rows["ttft"].higher_is_better is False
    assert rows["tokens"].verdict is Verdict.CHANGED and rows["tokens"].higher_is_better is None
    assert rows["tokens"].delta_pct == pytest.approx(-10.0) and rows["tokens"].worse_pct is None


def test_keys_units_duplicates_and_zero_base(tmp_path: Path) -> None:
    base_r = result(
        workload="w",
        measurements=[
            _plain("bw", 1.0, "GB/s", node="a"),
            _plain("bw", 3.0, "GB/s", node="a"),  # two -> mean 2 GB/s
            _plain("errors", 0.0, "count"),
            _plain("lat", 1.0, "ms"),
            _plain("gone", 1.0, "s"),
        ],
    )
    new_r = result(
        workload="w",
        measurements=[
            _plain("bw", 2000.0, "MB/s", node="a"),
            _plain("errors", 2.0, "count"),
            _plain("lat", 1.0, "GB"),
            _plain("fresh", 1.0, "s"),
            _plain("bw", 1.0, "GB/s", node="b"),
        ],
    )
    base, new = _records(tmp_path, [base_r], [new_r])
    comparison = compare(base, new)
    rows = {(r.metric, r.labels): r for r in comparison.rows}
    bw = rows[("bw", (("node", "a"),))]
    assert (bw.base, bw.new, bw.unit, bw.n_base, bw.verdict) == (2.0, 2.0, "GB/s", 2, Verdict.SAME)
    errors = rows[("errors", ())]
    assert errors.delta == 2.0 and errors.delta_pct is None and errors.verdict is Verdict.CHANGED
    lat = rows[("lat", ())]
    assert lat.verdict is Verdict.UNIT_MISMATCH and math.isnan(lat.delta) and lat.unit == "ms vs GB"
    assert comparison.only_in_base == (key_of("w", "gone", {}),)
    assert comparison.only_in_new == (key_of("w", "bw", {"node": "b"}), key_of("w", "fresh", {}))
    assert comparison.exit_code == 0
    assert rows_as_dicts([bw])[0]["labels"] == {"node": "a"}


def test_incompatible_records_are_refused_unless_allowed(tmp_path: Path) -> None:
    kube = {
        "target": {"kind": "kube", "name": "lab", "server_version": "v1.33"},
        "profile": {"name": "h100-sxm-8x-ib400", "reason": "matched"},
    }
    base, new = _records(tmp_path, [fio_result(450.0)], [fio_result(450.0)], new_info=kube)
    with pytest.raises(ConfigError) as info:
        compare(base, new)
    message = str(info.value)
    assert "runs base and new are not comparable" in message
    assert "target kind differs: 'embedded' in base, 'kube' in new" in message
    assert (
        "profile differs: 'cpu-only' in base, 'h100-sxm-8x-ib400' in new" in message and "--allow-mismatch" in message
    )
    allowed = compare(base, new, allow_mismatch=True)
    assert allowed.notes[0].startswith("compared despite: target kind differs")
    with pytest.raises(ConfigError, match="percentage >= 0"):
        compare(base, base, fail_on_regression_pct=-1)


def test_interrupted_records_compare_with_notes(tmp_path: Path) -> None:
    base = load_record(write_record(tmp_path / "b", info=None, results=[fio_result(450.0)], tail='{"x'))
    new = load_record(write_record(tmp_path / "n", results=[fio_result(300.0)]))
    comparison = compare(base, new, fail_on_regression_pct=10)
    assert comparison.exit_code == 1
    assert "b: target kind unknown, not checked" in comparison.notes
    assert any(n.startswith("b: results.jsonl line 2 is truncated") for n in comparison.notes)


def test_format_comparison_text(tmp_path: Path) -> None:
    base, new = _records(
        tmp_path,
        [fio_result(450.0), result(workload="x", measurements=[_plain("gone", 1.0)])],
        [fio_result(400.0, iops=5200.0)],
    )
    text = format_comparison(compare(base, new, fail_on_regression_pct=5))
    lines = text.splitlines()
    assert lines[0] == "compare base (base) -> new (new); fail on regression > 5%"
    assert lines[1] == (
        "3 metrics in both: 1 regressions, 0 worse, 1 better, 1 unchanged, 0 changed (direction "
        "unknown), 0 unit mismatches; 1 only in base, 0 only in new"
    )
    header = next(i for i, line in enumerate(lines) if line.startswith("verdict"))
    assert lines[header + 1].split()[:2] == ["regression", "fio"]
    assert "-11.11%" in lines[header + 1] and "higher" in lines[header + 1]
    assert "only in base (missing from new): 1" in text and "  x gone" in text
    assert "clat" not in text  # unchanged rows are hidden unless asked for
    assert "clat" in format_comparison(compare(base, new), include_same=True)
    limited = format_comparison(compare(base, new), max_rows=1)
    assert "... 1 more rows" in limited
