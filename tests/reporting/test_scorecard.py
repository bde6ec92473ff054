"""The report leads with the numbers: scorecard, failures, capacity panel, then details; checked on the record of
a real `k8s-ai-bench run` (the main job) whose tests read real tool outputs, in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.reporting.html_scorecard import scorecard_rows
from harness.reporting.load import load_record
from harness.reporting.schema import TestResult

DATA = Path(__file__).resolve().parent.parent / "data"
CHROMIUM = shutil.which("chromium")

# The main job's suite: each test parses a real output from tests/data with the real parsers, records and is
# judged by the h100 profile like the shipped suites (the GPU work itself is what these files captured).
SUITE = f'''
from pathlib import Path

import pytest

from harness.collectives import nccl_run
from harness.measurement import Measurement
from harness.parsers.fio import fio_measurements, parse_fio
from harness.parsers.inference_perf import inference_perf_measurements
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate
from harness.thresholds.model import RuleKind
from harness.thresholds.verdicts import judge

DATA = Path({str(DATA)!r})


@pytest.mark.network
@pytest.mark.perf
def test_nccl_allreduce_intra_node(profile, record):
    """All-reduce busbw on one 8-GPU node (superbench's real A100 log) against the H100 bar."""
    run = nccl_run((DATA / "nccl-tests_allreduce_1node-8gpu_a100_2020-format-redop-noroot_superbench.log").read_text(),
                   program="all_reduce_perf", scope="intra-node")
    verdicts = judge(profile, "nccl-allreduce", RuleKind.NO_CORRUPTION, run.measurements)
    checks = evaluate(profile, "nccl-allreduce", run.measurements, scope={{"scope": "intra-node"}})
    record.add(workload="nccl-allreduce", measurements=run.measurements, checks=[*verdicts, *checks])
    assert_passed(checks, verdicts=verdicts)


@pytest.mark.storage
@pytest.mark.perf
def test_fio_seqread(profile, record):
    """Sequential 1 MiB reads (fio 3.33, real output) on the local-path class."""
    ms = fio_measurements(parse_fio((DATA / "fio-3.33_seqread-1M_generated.json").read_text()),
                          extra_labels={{"storage_class": "local-path"}})
    checks = [c for c in evaluate(profile, "fio", ms) if c.threshold_id == "fio-seqread-bw"]
    record.add(workload="fio", measurements=ms, checks=checks)
    assert_passed(checks)


@pytest.mark.serving
@pytest.mark.perf
def test_inference_latency(profile, record):
    """TTFT/TPOT of inference-perf's real KubeCon demo run (vLLM, Llama-3.1-8B): recorded for the scorecard, not
    judged here (this fixture suite is about the report's layout; the import tests judge serving files)."""
    ms = inference_perf_measurements(
        (DATA / "inference-perf_stage_0_lifecycle_metrics_vllm-llama3.1-8b_kubecon-na-2025.json").read_text())
    record.add(workload="inference-server", measurements=ms)


@pytest.mark.observability
def test_capacity_panel(record):
    """Capacity per pool (allocatable, requested, used) and stranded GPUs."""
    pool = {{"pool": "h100", "nodes": "2", "resource": "nvidia.com/gpu"}}
    ms = [Measurement(metric="capacity", value=v, unit="count", labels={{**pool, "kind": k}})
          for k, v in (("allocatable", 16.0), ("requested", 12.0), ("used", 9.0))]
    ms.append(Measurement(metric="stranded_devices", value=4.0, unit="count",
                          labels={{"resource": "nvidia.com/gpu", "gang_size": "8", "fits": "0"}}))
    record.add(workload="capacity-panel", measurements=ms)
'''


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("mainjob")
    (tmp / "suite_main.py").write_text(SUITE)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(tmp / "suite_main.py"),
            "--reports-dir",
            str(tmp / "reports"),
            "--run-id",
            "main",
            "--profile",
            "h100-sxm-8x-ib400",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # the A100 log misses the H100 bar
    return tmp / "reports" / "main"


def test_scorecard_has_the_headlines_of_the_main_job(main_job: Path) -> None:
    rows = {
        (h.title, group): (best.value, check) for h, group, best, check in scorecard_rows(load_record(main_job).results)
    }
    value, check = rows[("all-reduce busbw", "scope=intra-node")]
    assert value == 235.26 and check is not None and check.status == "failed" and check.bar == 460
    value, check = rows[("fio sequential read", "storage_class=local-path")]
    assert value > 100 and check is not None and check.status == "passed"
    value, check = rows[("TTFT p50", "tool=inference-perf")]
    assert value == pytest.approx(54.611469531664625)


def test_report_leads_with_scorecard_failures_and_capacity(main_job: Path) -> None:
    html = (main_job / "report.html").read_text()
    order = [html.index(f'id="{anchor}"') for anchor in ("verdict", "scorecard", "failures", "capacity-panel")]
    assert order == sorted(order) and order[-1] < html.index('id="area-')
    failures = html[html.index('id="failures"') : html.index('id="capacity-panel"')]
    assert "test_nccl_allreduce_intra_node" in failures and "nccl-intra-busbw" in failures
    assert "NCCL_P2P_DISABLE" in failures  # the likely cause, from the bar's hint
    capacity = html[html.index('id="capacity-panel"') : html.index("<nav>")]
    assert "75%" in capacity and "56%" in capacity and "<svg" in capacity  # 12/16 requested, 9/16 used
    assert re.search(r"<td class=n>8</td><td class=n>4</td>", capacity)  # gang size 8: 4 stranded


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_main_job_report_in_headless_chromium(main_job: Path, tmp_path: Path) -> None:
    report = main_job / "report.html"
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
    png = tmp_path / "scorecard.png"
    shot = subprocess.run(
        [
            *common,
            f"--user-data-dir={tmp_path / 'p1'}",
            f"--screenshot={png}",
            "--window-size=1280,900",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert not [line for line in shot.stderr.splitlines() if "Uncaught" in line], shot.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # the first screen is not blank
    dom = subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'p2'}", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    ).stdout
    assert "<h1>FAIL</h1>" in dom
    scorecard = dom[dom.index('id="scorecard"') : dom.index('id="failures"')]
    assert "235.3 GB/s" in scorecard and "&gt;= 460 GB/s" in scorecard and "54.61 ms" in scorecard


def test_busbw_is_grouped_by_scope_and_the_transports_the_test_recorded() -> None:
    def busbw(value: float, scope: str) -> dict:
        return {
            "metric": "busbw",
            "value": value,
            "unit": "GB/s",
            "labels": {"placement": "out-of-place", "scope": scope, "size": "8589934592"},
        }

    def transport(name: str) -> dict:
        return {"metric": "transport", "value": 1, "unit": "count", "labels": {"transport": name}}

    results = [
        {
            "id": "a",
            "measurements": [
                busbw(470.0, "intra-node"),
                busbw(300.0, "intra-node"),
                transport("NVLS"),
                transport("P2P/IPC"),
            ],
        },
        {"id": "b", "measurements": [busbw(12.0, "inter-node"), transport("NET/Socket")]},
        {"id": "c", "measurements": [busbw(360.0, "inter-node"), transport("NET/IB"), transport("NET/IB/GDRDMA")]},
    ]
    typed = [TestResult.from_json({"status": "passed", **r}) for r in results]
    rows = [(h.title, group, best.value) for h, group, best, _ in scorecard_rows(typed)]
    assert rows == [
        ("all-reduce busbw", "scope=inter-node, transport=NET/IB+NET/IB/GDRDMA", 360.0),
        ("all-reduce busbw", "scope=inter-node, transport=NET/Socket", 12.0),
        ("all-reduce busbw", "scope=intra-node, transport=NVLS+P2P/IPC", 470.0),
    ]
