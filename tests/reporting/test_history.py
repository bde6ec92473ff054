"""The history view: series across runs folded over nodes, terminal text and the HTML with inline SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from reporting_records import RUN_INFO, result, write_record

from harness.reporting.history import format_history, history, render_history_svg, render_series_svg, sparkline
from harness.reporting.load import load_record


def _run(tmp_path: Path, run_id: str, started_at: float | None, busbw: dict[str, float], ttft: float | None = None):
    measurements = [
        {"metric": "busbw", "value": v, "unit": "GB/s", "labels": {"node": n, "size": "8G"}} for n, v in busbw.items()
    ]
    if ttft is not None:
        measurements.append({"metric": "ttft", "value": ttft, "unit": "ms", "labels": {"q": "p99"}})
    info = None if started_at is None else {**RUN_INFO, "run_id": run_id, "started_at": started_at}
    return write_record(tmp_path / run_id, info=info, results=[result(workload="nccl", measurements=measurements)])


def test_series_fold_nodes_and_follow_started_at(tmp_path: Path) -> None:
    runs = [
        _run(tmp_path, "n3", 300.0, {"a": 400.0, "b": 420.0}, ttft=90.0),
        _run(tmp_path, "n1", 100.0, {"a": 450.0, "b": 450.0}),
        _run(tmp_path, "n2", 200.0, {"a": 440.0}, ttft=80.0),
    ]
    hist = history(runs)
    assert [run for run, _ in hist.runs] == ["n1", "n2", "n3"]
    busbw, ttft = hist.series
    assert busbw.title == "nccl busbw{size=8G}" and busbw.unit == "GB/s"
    assert [(p.run_id, p.value, p.count) for p in busbw.points] == [
        ("n1", 450.0, 2),
        ("n2", 440.0, 1),
        ("n3", 410.0, 2),
    ]
    assert (busbw.last, busbw.min, busbw.max, busbw.change) == (410.0, 410.0, 450.0, -30.0)
    assert round(busbw.change_pct, 3) == round(-30 / 440 * 100, 3)
    assert [p.run_id for p in ttft.points] == ["n2", "n3"] and ttft.change == 10.0
    assert hist.problems == ()


def test_undated_runs_go_last_with_a_problem(tmp_path: Path) -> None:
    undated = _run(tmp_path, "cut", None, {"a": 1.0})
    dated = load_record(_run(tmp_path, "d", 5.0, {"a": 2.0}))
    hist = history([undated, dated])
    assert [run for run, _ in hist.runs] == ["d", "cut"]
    assert hist.problems[0] == "cut: no started_at (run.json missing or incomplete); placed after the dated runs"
    assert hist.problems[1].startswith("cut: run.json missing")
    single = history([dated]).series[0]
    assert single.change is None and single.change_pct is None


def test_terminal_text(tmp_path: Path) -> None:
    runs = [_run(tmp_path, f"r{i}", float(i), {"a": v}) for i, v in enumerate([1.0, 2.0, 4.0])]
    text = format_history(history(runs))
    lines = text.splitlines()
    assert lines[0] == "history of 3 runs: r0, r1, r2"
    assert lines[2].split() == ["metric", "unit", "runs", "last", "min", "max", "vs", "prev", "trend"]
    assert lines[3].split() == ["nccl", "busbw{size=8G}", "GB/s", "3", "4", "1", "4", "+2", "(+100.0%)", "▁▃█"]
    assert sparkline([5.0, 5.0]) == "▄▄" and sparkline([]) == ""
    assert "... 1 more series" in format_history(history([*runs, _run(tmp_path, "t", 9.0, {}, ttft=1.0)]), max_series=1)


def test_html_has_one_inline_svg_per_series_and_escapes(tmp_path: Path) -> None:
    runs = [_run(tmp_path, f"<r{i}>", float(i), {"a": 1.0 + i}, ttft=5.0) for i in range(3)]
    path = render_history_svg(history(runs), tmp_path / "out" / "history.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 2
    assert "<r1>" not in page and "&lt;r1&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "<script" not in page
    svg = render_series_svg(history(runs).series[0])
    root = ET.fromstring(svg)  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and len(root.findall(f"{ns}circle")) == 3
    assert root.find(f"{ns}path") is not None
    # the runs name the x axis, and each point's tooltip says run, time and value (escaped, read back as text)
    assert [t.text for t in root.findall(f"{ns}text[@class='tk']")][:3] == ["<r0>", "<r1>", "<r2>"]
    assert [c.findtext(f"{ns}title") for c in root.findall(f"{ns}circle")][1] == "<r1> (1970-01-01 00:00 UTC): 2 GB/s"
    flat = ET.fromstring(render_series_svg(history(runs).series[1]))  # constant series still plots
    ys = {c.get("cy") for c in flat.findall(f"{ns}circle")}
    assert len(ys) == 1
    one = ET.fromstring(render_series_svg(history(runs[:1]).series[0]))
    assert one.find(f"{ns}path") is None and len(one.findall(f"{ns}circle")) == 1
