"""The run record's schema (harness/reporting/schema.py): one code path writes and reads it, old records load, and
new fields survive a round trip through a harness that does not know them."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest
from reporting_records import RUN_INFO, fio_result, result, sample_results, write_record

from harness.errors import ConfigError
from harness.measurement import Measurement
from harness.reporting.html import build_html
from harness.reporting.load import load_record
from harness.reporting.record import RunRecord
from harness.reporting.schema import SCHEMA_VERSION, CheckEntry, MeasurementEntry, RunInfo, TestResult
from harness.reporting.templating import environment


def test_version_1_records_load_and_rewrite_as_the_current_version(tmp_path: Path) -> None:
    """Records from before the schema (no schema_version) read with the same keys; writing them back through the
    schema gives the current version with nothing lost."""
    old = write_record(tmp_path / "old", results=sample_results())
    record = load_record(old)
    assert record.problems == [] and record.info.schema_version == 1
    copy = RunRecord(tmp_path / "copy")
    for typed in record.results:
        copy.add_result(typed)
    copy.write_info(record.info)
    again = load_record(tmp_path / "copy")
    assert again.info.schema_version == SCHEMA_VERSION
    assert again.results == record.results
    assert again.info.to_json() == record.info.to_json()


def test_unknown_fields_survive_and_a_newer_version_is_said(tmp_path: Path) -> None:
    line = result(
        status="failed",
        checks=[{"threshold_id": "t", "metric": "bw", "kind": "faster-tier", "status": "failed", "tier": "nvme"}],
        future_field={"x": 1},
    )
    info = {**RUN_INFO, "schema_version": SCHEMA_VERSION + 1, "weather": "sunny"}
    record = load_record(write_record(tmp_path / "r", info=info, results=[line]))
    assert record.problems == [
        f"run.json has schema version {SCHEMA_VERSION + 1}, newer than this harness reads ({SCHEMA_VERSION}): "
        "fields it does not know are kept but not shown"
    ]
    typed = record.results[0]
    assert typed.extra == {"future_field": {"x": 1}} and typed.checks[0].extra == {"tier": "nvme"}
    assert typed.to_json()["future_field"] == {"x": 1} and typed.checks[0].to_json()["tier"] == "nvme"
    assert record.info.extra == {"weather": "sunny"} and record.info.to_json()["weather"] == "sunny"


def test_writer_refuses_what_the_schema_cannot_hold(tmp_path: Path) -> None:
    record = RunRecord(tmp_path / "r")
    with pytest.raises(ConfigError, match=r"result a::b not recorded: .*a measurement without metric"):
        record.add_result({"id": "a::b", "status": "passed", "measurements": [{"value": 1.0}]})
    with pytest.raises(ConfigError, match=r"run info not recorded: started_at of a type"):
        record.write_info({"run_id": "r", "started_at": "yesterday"})
    # a typed result is held to the same bar: an infinite value would read back as nothing (and is not JSON)
    infinite = Measurement(metric="bw", value=float("inf"), unit="GB/s")
    typed = TestResult(id="a::c", name="c", status="passed", measurements=[MeasurementEntry.of(infinite)])
    with pytest.raises(ConfigError, match=r"result a::c not recorded: a::c: measurement bw = inf needs a metric"):
        record.add_result(typed)
    with pytest.raises(ConfigError, match=r"unknown status 'fine'"):
        record.add_result(TestResult(id="a::d", name="d", status="fine"))
    assert not (tmp_path / "r" / "results.jsonl").exists() and not (tmp_path / "r" / "run.json").exists()


def test_written_lines_are_the_schema_serialisation(tmp_path: Path) -> None:
    record = RunRecord(tmp_path / "r")
    typed = TestResult.from_json(fio_result(450.0))
    record.add_result(typed)
    line = json.loads((tmp_path / "r" / "results.jsonl").read_text())
    assert line == json.loads(json.dumps(typed.to_json())) and line["schema_version"] == SCHEMA_VERSION
    assert RunInfo.from_json(RUN_INFO).to_json()["target"] == RUN_INFO["target"]


def test_checks_render_from_their_fields_whatever_their_kind() -> None:
    """A rule kind the report has never seen (a later version's): no numeric bar, its own fields; shown
    generically, escaped. (A verdict kind it knows shows what the rule demands: tests/reporting/test_html.py.)"""
    check = CheckEntry.from_json(
        {
            "threshold_id": "gang-whole",
            "metric": "gang_placed",
            "kind": "gang-placed-whole-v2",
            "status": "failed",
            "source": "project rule",
            "hint": "a <scheduler> without gang support",
            "placed": 3,
            "wanted": 4,
        }
    )
    line = result(status="failed", area="network", checks=[check.to_json()])
    page = build_html(RUN_INFO, [line])
    row = page[page.index("gang_placed") : page.index("</tr>", page.index("gang_placed"))]
    assert "gang-placed-whole-v2" in row and "no data" in row
    assert "placed=3" in row and "wanted=4" in row and "a &lt;scheduler&gt; without gang support" in row


def test_templates_escape_and_refuse_undefined_names() -> None:
    env = environment()
    assert env.autoescape is True and env.undefined is jinja2.StrictUndefined
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
