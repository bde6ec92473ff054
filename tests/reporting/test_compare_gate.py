"""The regression gate never passes on nothing: a new run with no comparable metric, metrics in units that do not
convert, or a metric of the base missing from the new run fail ``--fail-on-regression`` (issue 18)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from reporting_records import RUN_INFO, fio_result, result, write_record

from harness.reporting.compare import compare
from harness.reporting.load import load_record


def _m(metric: str, value: float, unit: str) -> dict:
    return {"metric": metric, "value": value, "unit": unit, "labels": {}, "emulated": False}


def _pair(tmp_path: Path, base_results: list, new_results: list) -> tuple[Path, Path]:
    base = write_record(tmp_path / "base", info={**RUN_INFO, "run_id": "base"}, results=base_results)
    new = write_record(tmp_path / "new", info={**RUN_INFO, "run_id": "new"}, results=new_results)
    return base, new


@pytest.mark.parametrize(
    ("new_results", "reason"),
    [
        ([], "nothing to compare: no metric of new is comparable with base"),
        ([result(workload="w", measurements=[_m("other", 1.0, "s")])], "nothing to compare"),
        ([result(workload="w", measurements=[_m("lat", 5.0, "GB/s")])], "1 metrics in units that do not convert"),
    ],
    ids=["measured-nothing", "measured-other-things", "other-units"],
)
def test_gate_fails_when_nothing_compares(tmp_path: Path, new_results: list, reason: str) -> None:
    base, new = _pair(tmp_path, [result(workload="w", measurements=[_m("lat", 5.0, "ms")])], new_results)
    comparison = compare(load_record(base), load_record(new), fail_on_regression_pct=10)
    assert not comparison.regressions
    assert comparison.exit_code == 1 and any(reason in r for r in comparison.gate_failures), comparison.gate_failures
    assert compare(load_record(base), load_record(new)).exit_code == 0  # no gate asked for: nothing to fail


def test_gate_fails_on_a_metric_that_disappeared(tmp_path: Path) -> None:
    extra = result(workload="w", measurements=[_m("lat", 5.0, "ms")])
    base, new = _pair(tmp_path, [fio_result(450.0), extra], [fio_result(450.0)])
    comparison = compare(load_record(base), load_record(new), fail_on_regression_pct=10)
    assert comparison.gate_failures == ("1 metrics of base missing from new",)


def test_gate_passes_when_everything_compares_and_holds(tmp_path: Path) -> None:
    base, new = _pair(tmp_path, [fio_result(450.0)], [fio_result(449.0)])
    assert compare(load_record(base), load_record(new), fail_on_regression_pct=10).exit_code == 0


def test_cli_says_why_the_gate_failed(tmp_path: Path) -> None:
    base, new = _pair(tmp_path, [fio_result(450.0)], [])
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "report", "compare", str(base), str(new), "--fail-on-regression", "10"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "GATE FAILED: nothing to compare" in done.stdout
    assert "k8s-ai-bench: regression gate failed: nothing to compare" in done.stderr
