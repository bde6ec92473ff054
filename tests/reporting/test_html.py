"""The HTML report (harness/reporting/html.py) built from synthetic run records."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.reporting.html import build_html, read_artifact_tails, render_html
from harness.reporting.html_plots import Chart
from harness.reporting.load import load_record
from harness.reporting.schema import MeasurementEntry
from harness.reporting.svg import Series, bar_chart, cdf_chart, line_chart, nice_ticks, scatter_chart

XSS = "<script>alert(1)</script>"
GPU_SKIP = "requires gpu: no node has allocatable nvidia.com/gpu (nodes: vm)"


def _info(**overrides: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": "20250101-120000-abcd",
        "started_at": 1735732800.0,
        "finished_at": 1735733100.0,
        "exit_status": 1,
        "harness_version": "0.1.0",
        "git_commit": "0123456789abcdef0123",
        "python": "3.11.9",
        "options": {"target": "embedded", "profile": "", "timeout_scale": 1.0},
        "option_sources": {"target": "default"},
        "target": {"kind": "embedded", "name": "aibench-embedded", "server_version": "v1.31.0"},
        "capabilities": {
            "server_version": "v1.31.0",
            "embedded": True,
            "accelerators": "none",
            "nodes": [
                {
                    "name": "vm",
                    "ready": True,
                    "emulated": False,
                    "gpus": 0,
                    "tpus": 0,
                    "rdma": {},
                    "labels": {},
                    "allocatable": {"cpu": "2", "memory": "8Gi"},
                    "taints": [],
                },
                {
                    "name": "gpu-0",
                    "ready": True,
                    "emulated": True,
                    "gpus": 8,
                    "tpus": 0,
                    "rdma": {"rdma/ib": 4},
                    "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                    "allocatable": {"cpu": "64"},
                    "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
                },
            ],
            "addons": ["metrics-server"],
            "cni": ["embedded-loopback"],
            "prometheus": [],
            "storage_classes": [
                {
                    "name": "local-path",
                    "provisioner": "aibench.io/local-path",
                    "binding_mode": "WaitForFirstConsumer",
                    "default": True,
                }
            ],
        },
        "profile": {"name": "cpu-only", "reason": "matched from capabilities: accelerator=none"},
    }
    info.update(overrides)
    return info


def _m(metric: str, value: float, unit: str, emulated: bool = False, **labels: str) -> dict[str, Any]:
    return {"metric": metric, "value": value, "unit": unit, "labels": labels, "emulated": emulated}


def _check(
    metric: str,
    observed: float | None,
    bar: float,
    status: str,
    *,
    comparison: str = ">=",
    unit: str = "GB/s",
    emulated: bool = False,
    **labels: str,
) -> dict[str, Any]:
    return {
        "threshold_id": f"{metric}-bar",
        "workload": "w",
        "metric": metric,
        "kind": "absolute",
        "status": status,
        "severity": "fail",
        "observed": observed,
        "unit": unit,
        "comparison": comparison,
        "bar": bar,
        "baseline_value": None,
        "regression_pct": None,
        "selector": {},
        "labels": labels,
        "matched": 1,
        "emulated": emulated,
        "source": "vendor spec <sheet> & co",
        "description": "",
        "hint": "check the fabric",
        "detail": "",
        "message": "",
    }


def _result(test: str, status: str, area: str, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f"suites/{area}/test_x.py::{test}",
        "name": test,
        "doc": f"The {test} sentence.",
        "area": area,
        "markers": [],
        "status": status,
        "failure_kind": "",
        "message": "",
        "duration_s": 1.5,
        "workload": "",
        "params": {},
        "measurements": [],
        "checks": [],
        "emulated": False,
        "artifacts": "",
    }
    out.update(fields)
    return out


def _nccl() -> dict[str, Any]:
    sizes = [2**k for k in range(10, 34, 2)]
    ms = [
        _m(
            "busbw",
            min(400.0, s / 2**24),
            "GB/s",
            emulated=True,
            op="all_reduce",
            nodes="2",
            size=str(s),
            placement="out-of-place",
        )
        for s in sizes
    ]
    ms += [
        _m(
            "busbw",
            min(380.0, s / 2**24),
            "GB/s",
            emulated=True,
            op="all_reduce",
            nodes="1",
            size=str(s),
            placement="out-of-place",
        )
        for s in sizes
    ]
    return _result(
        "test_nccl_allreduce",
        "failed",
        "network",
        failure_kind="threshold",
        workload="nccl-tests",
        message="busbw-bar: busbw = 380 GB/s, bar >= 400 GB/s",
        measurements=ms,
        emulated=True,
        checks=[_check("busbw", 380.0, 400.0, "failed", emulated=True, op="all_reduce", nodes="1")],
    )


def _fio() -> dict[str, Any]:
    ms = []
    for job, bw in (("seq-read", 2048.0), ("rand-read", 512.0)):
        labels = {"job": job, "direction": "read"}
        ms += [_m("bw", bw, "MiB/s", **labels), _m("iops", bw * 256, "IOPS", **labels)]
        ms += [
            _m("clat", 100.0 * float(p), "us", stat="percentile", percentile=p, **labels) for p in ("50", "99", "99.9")
        ]
    return _result(
        "test_fio_local_path",
        "passed",
        "storage",
        workload="fio",
        measurements=ms,
        checks=[_check("bw", 2048.0, 1000.0, "passed", unit="MiB/s", job="seq-read")],
    )


def _serving() -> dict[str, Any]:
    ms = []
    for p in ("50", "90", "99"):
        ms.append(_m("ttft", 20.0 * float(p) / 50, "ms", stat="percentile", percentile=p, endpoint="Aggregated"))
        ms.append(_m("tpot", 5.0 * float(p) / 50, "ms", stat="percentile", percentile=p, endpoint="Aggregated"))
    ms += [_m("startup_latency", 0.5 + i / 10, "s", stat="sample", pod=f"p{i}") for i in range(30)]
    return _result("test_inference_latency", "passed", "serving", measurements=ms)


def _records() -> list[dict[str, Any]]:
    return [
        _result("test_pod_no_gpu", "passed", "compute", workload="gpu-visibility"),
        _result("test_gpu_burn", "skipped", "compute", message=GPU_SKIP),
        _result("test_dcgm_metrics", "skipped", "observability", message=GPU_SKIP),
        _result("test_ib_bw", "skipped", "network", message="requires rdma: no RDMA resource advertised"),
        _result(
            "test_quoted", "error", "control_plane", failure_kind="harness", message=f"boom {XSS} & \"quotes\" 'single'"
        ),
        _nccl(),
        _fio(),
        _serving(),
    ]


def _write(run_dir: Path, info: dict[str, Any] | None, results: list[dict[str, Any]], tail: str = "") -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    if info is not None:
        (run_dir / "run.json").write_text(json.dumps(info))
    (run_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results) + tail)
    return run_dir


class _Attrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data") and value:
                self.urls.append((tag, name, value))


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_banner_verdict_counts_and_target(tmp_path: Path) -> None:
    page = render_html(_write(tmp_path / "run", _info(), _records())).read_text()
    text = _text(page)
    assert '<section class="banner v-fail"' in page
    assert "<h1>FAIL</h1>" in page
    assert "3 passed · 1 failed · 1 error · 3 skipped (8 tests)" in text
    assert "20250101-120000-abcd" in page
    assert "embedded “aibench-embedded” · Kubernetes v1.31.0 · 2 nodes (1 emulated )" in text
    assert "cpu-only — matched from capabilities: accelerator=none" in text
    assert "0123456789ab" in page and "0.1.0" in page
    assert "2025-01-01 12:00:00 UTC, took 5 min 00 s" in text
    # per-area table
    area_rows = dict(re.findall(r'<tr><th><a href="#area-(\w+)">[^<]*</a></th>((?:<td class="n">\d*</td>)+)', page))
    assert re.findall(r"\d+", area_rows["compute"]) == ["1", "0", "0", "1", "2"]
    assert re.findall(r"\d+", area_rows["network"])[:5] == ["0", "1", "0", "1", "2"]


@pytest.mark.parametrize(
    ("statuses", "verdict"),
    [(["passed", "skipped"], "PASS"), (["passed", "error"], "ERROR"), (["error", "failed"], "FAIL")],
)
def test_verdicts(statuses: list[str], verdict: str) -> None:
    results = [_result(f"t{i}", s, "compute") for i, s in enumerate(statuses)]
    assert f"<h1>{verdict}</h1>" in build_html(_info(), results)


def test_escaping_of_messages_labels_and_sources() -> None:
    results = _records()
    results[0]["measurements"] = [_m("x", 1.0, "s", tag=XSS)]
    results[0]["doc"] = XSS
    page = build_html(_info(run_id=XSS), results)
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&amp; &#34;quotes&#34; &#39;single&#39;" in page  # markupsafe's entities for the two quotes
    assert "vendor spec &lt;sheet&gt; &amp; co" in page
    parser = _Attrs()
    parser.feed(page)
    assert "script" not in parser.tags


def test_no_fetched_resources() -> None:
    page = build_html(_info(), _records())
    parser = _Attrs()
    parser.feed(page)
    assert parser.urls, "expected in-page anchors"
    for tag, name, value in parser.urls:
        assert not value.startswith(("http://", "https://", "//")), (tag, name, value)
        assert value.startswith(("#", "data:")), (tag, name, value)
    assert "@import" not in page and "url(" not in page
    assert not {"script", "img", "iframe", "object", "embed", "link"} & set(parser.tags) - {"link"}
    assert "default-src 'none'" in page


def test_plots_for_nccl_fio_inference_and_startup() -> None:
    page = build_html(_info(), _records())
    assert page.count("<svg") >= 6
    assert "Bus bandwidth vs message size [emulated]" in page
    assert "op=all_reduce nodes=2 placement=out-of-place [emulated]" in page
    assert "bar &gt;= 400 GB/s" in page  # the bar as a dashed reference line
    assert ">1K<" in page and ">2G<" in page  # log2 byte ticks
    assert "fio bandwidth per job" in page and "fio IOPS per job" in page
    assert "fio completion latency (us)" in page and "<th>p99.9</th>" in page
    assert "inference latency percentiles" in page and "TTFT vs TPOT" in page
    assert "pod startup latency CDF" in page and "(n=30)" in page


def test_checks_show_bar_margin_source_and_visual() -> None:
    page = build_html(_info(), _records())
    assert "&gt;= 400 GB/s" in page
    assert "-5.0% below" in page  # 380 vs 400
    assert "+104.8% above" in page  # 2048 vs 1000
    assert 'class="hb"' in page
    assert "check the fabric" in page  # hint of a failed check


def test_emulated_labelled_everywhere() -> None:
    page = build_html(_info(), _records())
    assert page.count('class="emu">emulated</span>') >= 4  # banner, node, test card, check row
    text = _text(page)
    assert "1 results include emulated measurements" in text
    assert "gpu-0 emulated" in text


def test_skips_grouped_by_reason() -> None:
    page = build_html(_info(), _records())
    section = page[page.index('id="skips"') : page.index('id="errors"')]
    assert section.count("requires gpu: no node has allocatable nvidia.com/gpu (nodes: vm)") == 1
    assert "2 tests" in section and "1 test<" in section
    assert section.index("requires gpu") < section.index("requires rdma")  # biggest group first
    assert "test_gpu_burn" in section and "test_dcgm_metrics" in section


def test_errors_with_event_and_log_tails(tmp_path: Path) -> None:
    artifacts = tmp_path / "run" / "artifacts" / "test_quoted"
    (artifacts / "logs").mkdir(parents=True)
    (artifacts / "events.txt").write_text("".join(f"event {i} <Warning>\n" for i in range(50)))
    (artifacts / "logs" / "pod-a.log").write_text("".join(f"log line {i}\n" for i in range(30)))
    results = _records()
    results[4]["artifacts"] = "artifacts/test_quoted"
    page = render_html(_write(tmp_path / "run", _info(), results)).read_text()
    section = page[page.index('id="errors"') : page.index('id="capabilities"')]
    assert "last 20 lines of <code>events.txt</code>" in section
    assert "event 49 &lt;Warning&gt;" in section and "event 29 " not in section and "event 30 " in section
    assert "last 20 lines of <code>logs/pod-a.log</code>" in section
    assert "log line 29" in section and "log line 9\n" not in section


def test_read_artifact_tails_missing_dir(tmp_path: Path) -> None:
    assert read_artifact_tails(tmp_path / "nope") == []


def test_interrupted_record(tmp_path: Path) -> None:
    info = _info()
    for key in ("finished_at", "exit_status", "profile"):
        del info[key]
    run_dir = _write(tmp_path / "run", info, _records()[:3], tail='{"id": "suites/x.py::cut", "stat')
    record = load_record(run_dir)
    assert len(record.results) == 3
    assert record.problems == [
        "run.json lacks finished_at, exit_status: run was interrupted before it ended",
        "results.jsonl line 4 is truncated and was skipped (the run was interrupted while writing it)",
    ]
    text = _text(render_html(run_dir).read_text())
    assert "INCOMPLETE" in text
    assert "the run did not finish" in text
    assert "run.json lacks finished_at, exit_status, profile" in text
    assert "line 4 is truncated" in text
    assert "profile not recorded" in text


def test_missing_run_json_and_results(tmp_path: Path) -> None:
    run_dir = tmp_path / "20250101-x"
    run_dir.mkdir()
    text = _text(render_html(run_dir).read_text())
    assert "INCOMPLETE" in text
    assert "run.json missing" in text and "results.jsonl missing" in text
    assert "20250101-x" in text
    assert "Not recorded in run.json" in text


def test_damaged_values_do_not_crash() -> None:
    bad = _result(
        "t",
        "weird",
        "nowhere",
        measurements=[{"metric": "busbw", "value": "NaN"}, "junk"],
        checks=[{"status": "failed", "observed": "x", "bar": None}],
        params="p",
        markers=None,
    )
    page = build_html({"capabilities": {"nodes": ["junk", {"name": 3}]}}, [bad, "junk"])  # type: ignore[list-item]
    assert "<h1>INCOMPLETE</h1>" in page
    assert "Other" in page


def test_large_test_is_summarised_and_per_node_data_in_heat_table() -> None:
    nodes = [f"node-{i:04d}" for i in range(300)]
    checks = [
        _check("gpu_tflops", 900.0 - i, 700.0, "failed" if i > 250 else "passed", unit="TFLOP/s", node=n)
        for i, n in enumerate(nodes)
    ]
    ms = [_m("gpu_tflops", 900.0 - i, "TFLOP/s", node=n) for i, n in enumerate(nodes)]
    page = build_html(_info(), [_result("test_burn", "failed", "compute", measurements=ms, checks=checks)])
    assert page.count('<tr><td><span class="badge') == 25  # MAX_CHECK_ROWS
    assert "… and 275 more checks" in page
    assert "300 per-node measurements (in the heat table)" in page
    assert "Per-node heat table" in page and "300 nodes, 49 with a failed check" in page
    heat = page[page.index("Per-node heat table") :]
    assert heat.index("node-0299") < heat.index("node-0000")  # worst first
    assert "all 300 nodes" in heat


def test_large_node_list_collapses_into_pools() -> None:
    nodes = [
        {
            "name": f"n{i}",
            "ready": True,
            "emulated": True,
            "gpus": 8,
            "labels": {"nvidia.com/gpu.product": "H100" if i % 2 else "A100"},
        }
        for i in range(200)
    ]
    page = build_html(_info(capabilities={"nodes": nodes}), [])
    assert "<summary>all 200 nodes</summary>" in page
    assert "nvidia.com/gpu.product=H100" in page and "nvidia.com/gpu.product=A100" in page


def test_svg_helpers() -> None:
    assert nice_ticks(0, 97) == [0, 20, 40, 60, 80, 100]
    line = line_chart(
        [Series(name="a<b", points=[(1024, 1.0), (2048, 2.0)])], title="t", x_label="x", y_label="y", x_log2=True
    )
    assert line.startswith("<svg") and "a&lt;b" in line and "<path" in line
    assert "<rect" in bar_chart(["x", "y"], [("s", [1.0, None])], title="b", y_label="v")
    assert "<circle" in scatter_chart([Series(name="s", points=[(1.0, 2.0)])], title="s", x_label="x", y_label="y")
    cdf = cdf_chart([("all", [float(i) for i in range(1000)])], title="c", x_label="x")
    assert "(n=1000)" in cdf and cdf.count("H") > 300
    assert "(no data)" in line_chart([], title="e", x_label="x", y_label="y")


def test_charts_are_well_formed_svg_with_every_text_escaped() -> None:
    """The chart template's output is XML a standalone SVG viewer accepts, whatever the names hold."""
    odd = "a<b & \"c\" 'd'"
    charts = [
        line_chart(
            [Series(name=odd, points=[(0.0, 1.0), (1.0, 3.0)], tips=[odd, "t"])],
            title=odd,
            x_label=odd,
            y_label=odd,
            x_categories=[odd, "run-2"],
            y_zero=False,
        ),
        bar_chart([odd, "y"], [(odd, [1.0, -2.0]), ("s", [None, 3.0])], title=odd, y_label=odd),
        scatter_chart([Series(name=odd, points=[(1.0, 2.0)])], title=odd, x_label=odd, y_label=odd),
        cdf_chart([(odd, [1.0, 2.0, 3.0])], title=odd, x_label=odd),
        line_chart([], title=odd, x_label=odd, y_label=odd),
    ]
    for chart in charts:
        root = ET.fromstring(chart)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        texts = [e.text for e in root.iter() if e.text and odd in e.text]
        assert texts, chart  # the odd name arrives as text, escaped in the markup and read back whole
    line = ET.fromstring(charts[0])
    ticks = line.findall("{http://www.w3.org/2000/svg}text[@class='tk']")
    assert [(t.text, t.get("text-anchor")) for t in ticks[:2]] == [(odd, "start"), ("run-2", "end")]
    assert [
        c.findtext("{http://www.w3.org/2000/svg}title") for c in line.iter("{http://www.w3.org/2000/svg}circle")
    ] == [
        odd,
        "t",
    ]


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    report = render_html(_write(tmp_path / "run", _info(), _records()))
    png = tmp_path / "shot.png"
    common = [
        CHROMIUM or "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ]
    shot = subprocess.run(
        [
            *common,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            "--window-size=1280,2000",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    console = [line for line in shot.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not [line for line in console if "Uncaught" in line or "error" in line.lower()], console
    assert png.exists(), shot.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank 1280x2000 page compresses to a few KB
    dom = subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert "<h1>FAIL</h1>" in dom.stdout
    assert "<b>3</b> passed · <b>1</b> failed · <b>1</b> error · <b>3</b> skipped" in dom.stdout


def test_busbw_plot_names_the_data_path_and_needs_two_sizes() -> None:
    from harness.reporting.html_plots import busbw_plot

    def row(size: int, value: float, **labels: str) -> MeasurementEntry:
        return MeasurementEntry(metric="busbw", value=value, unit="GB/s", labels={"size": str(size), **labels})

    baseline = [row(1 << 20, 0.6, backend="tcp-ring"), row(1 << 26, 1.0, backend="tcp-ring")]
    (chart,) = busbw_plot(baseline, [])
    assert isinstance(chart, Chart)
    assert "Bus bandwidth vs message size (tcp-ring)" in chart.svg and "NCCL" not in chart.svg
    assert busbw_plot([row(1 << 24, 0.5, transport="ray-object-store")], []) == []


def test_verdict_checks_show_what_the_rule_demands_not_a_numeric_bar() -> None:
    """A verdict's ``bar`` is a rule parameter (the split's alpha here), not a value to compare ``observed`` with:
    the report prints what the rule demands, and no margin or bar graphic is derived from it."""
    split = _check("routed", 87.0, 0.001, "failed", comparison="", unit="count", subset="v2", weight="20")
    split["kind"] = "split-within-binomial"
    results = [_result("test_split", "failed", "serving", checks=[split], message="split outside its interval")]
    page = build_html(_info(), results)
    text = html.unescape(_text(page))
    assert "each subset's count inside its binomial acceptance interval" in text
    assert " 0.001 count" not in text
    assert "% above" not in text and "% below" not in text


def test_verdict_bar_text_in_scorecard_and_junit() -> None:
    from harness.reporting.html_scorecard import _bar
    from harness.reporting.junit import failure_message
    from harness.reporting.schema import CheckEntry, TestResult

    tier = CheckEntry.from_json(
        {**_check("tier_seqread_bw", 1.2, 1.5, "failed", comparison=""), "kind": "faster-tier-faster"}
    )
    numeric = CheckEntry.from_json(_check("busbw", 401.2, 460.0, "failed"))
    assert _bar(tier) == "fastest class >= 1.5x slowest on one headline"
    assert _bar(numeric) == ">= 460 GB/s"
    result = TestResult.from_json(_result("test_tiers", "failed", "storage", checks=[tier.to_json()]))
    assert "bar fastest class >= 1.5x slowest on one headline" in failure_message(result)
