"""HTML report of a large run record: 1,000 nodes x 50 metrics (50,000 measurements and 50,000 checks).

Targets (issues 4 and 15): render in <= 5 s, <= 500 MB peak RSS, report.html < 5 MB, with the scorecard (the first
metrics carry headline names: busbw, tflops, membw, ib_write_bw).

- Time: pytest-benchmark, ``render_html`` end to end (read run.json and results.jsonl, build, write), 3 rounds; the
  slowest round must meet the bar.
- Peak RSS: ``render_html`` runs in a fresh interpreter (``python -c``) that prints
  ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux) after rendering. That is the whole process's high-water
  mark, interpreter and imports included, so it is what a CI job would see; the record is written beforehand by
  this process, so writing it does not count.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.reporting.html import AREAS, render_html

REPO_ROOT = Path(__file__).resolve().parent.parent
NODES = 1000
METRICS = 50
MAX_SECONDS = 5.0
MAX_RSS_MB = 500.0
MAX_BYTES = 5 * 1024 * 1024


def _node(i: int) -> dict[str, Any]:
    return {
        "name": f"gpu-node-{i:04d}",
        "ready": i % 97 != 0,
        "emulated": i >= NODES // 2,
        "gpus": 8,
        "tpus": 0,
        "rdma": {"rdma/ib": 8},
        "labels": {
            "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" if i % 4 else "NVIDIA-H200",
            "node.kubernetes.io/instance-type": "p5.48xlarge",
            "topology.kubernetes.io/zone": f"zone-{i % 3}",
        },
        "allocatable": {"cpu": "192", "memory": "2048Gi", "nvidia.com/gpu": "8", "pods": "110"},
        "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
    }


# The first metrics carry scorecard headline names, so the render includes the scorecard's work on 50,000 values.
HEADLINE_METRICS = ("busbw", "tflops", "membw", "ib_write_bw")


def _result(index: int, rng: random.Random) -> dict[str, Any]:
    metric = HEADLINE_METRICS[index] if index < len(HEADLINE_METRICS) else f"metric_{index:02d}"
    bar = 100.0 + index
    measurements, checks = [], []
    failed = False
    for n in range(NODES):
        node = f"gpu-node-{n:04d}"
        value = bar * rng.uniform(0.97, 1.3)
        emulated = n >= NODES // 2
        status = "passed" if value >= bar else "failed"
        failed = failed or status == "failed"
        labels = {"node": node, "gpu": "all", "placement": "out-of-place", "scope": "intra-node"}
        measurements.append({"metric": metric, "value": value, "unit": "GB/s", "labels": labels, "emulated": emulated})
        checks.append(
            {
                "threshold_id": f"{metric}-per-node",
                "workload": "node-health",
                "metric": metric,
                "kind": "absolute",
                "status": status,
                "severity": "fail",
                "observed": value,
                "unit": "GB/s",
                "comparison": ">=",
                "bar": bar,
                "baseline_value": None,
                "regression_pct": None,
                "selector": {"node": "*"},
                "labels": labels,
                "matched": 1,
                "emulated": emulated,
                "source": "vendor datasheet, 90% of spec",
                "description": f"{metric} per node",
                "hint": "check the node's PCIe link and clocks",
                "detail": "",
                "message": f"{metric}-per-node: {metric}{{node={node}}} = {value:g} GB/s, bar >= {bar:g} GB/s",
            }
        )
    return {
        "id": f"suites/compute/test_node_health.py::test_{metric}",
        "name": f"test_{metric}",
        "doc": f"Every node reaches the profile's {metric}.",
        "area": AREAS[index % len(AREAS)],
        "markers": ["performance"],
        "status": "failed" if failed else "passed",
        "failure_kind": "threshold" if failed else "",
        "message": "",
        "duration_s": 12.5,
        "workload": "node-health",
        "params": {"metric": metric},
        "measurements": measurements,
        "checks": checks,
        "emulated": True,
        "artifacts": f"artifacts/test_{metric}",
    }


@pytest.fixture(scope="module")
def big_record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("big-record")
    rng = random.Random(4)
    info = {
        "run_id": "bench-1000-nodes",
        "started_at": 1767225600.0,
        "finished_at": 1767229200.0,
        "exit_status": 1,
        "harness_version": "0.1.0",
        "git_commit": "0" * 40,
        "target": {"kind": "kube", "name": "bench", "server_version": "v1.31.0"},
        "capabilities": {"server_version": "v1.31.0", "nodes": [_node(i) for i in range(NODES)]},
        "profile": {"name": "h100-sxm-8x-ib400", "reason": "chosen with --profile"},
    }
    (run_dir / "run.json").write_text(json.dumps(info))
    with open(run_dir / "results.jsonl", "w", encoding="utf-8") as handle:
        for index in range(METRICS):
            handle.write(json.dumps(_result(index, rng)) + "\n")
    return run_dir


def test_render_1000_nodes_x_50_metrics(benchmark: Any, big_record: Path) -> None:
    report = benchmark.pedantic(render_html, args=(big_record,), rounds=3, iterations=1)
    size = report.stat().st_size
    benchmark.extra_info["report_bytes"] = size
    benchmark.extra_info["results_jsonl_bytes"] = (big_record / "results.jsonl").stat().st_size
    assert size < MAX_BYTES, f"report.html is {size / 2**20:.2f} MiB"
    assert benchmark.stats.stats.max <= MAX_SECONDS
    page = report.read_text()
    assert "<h1>FAIL</h1>" in page and "1000 nodes" in page
    assert 'id="scorecard"' in page and "all-reduce busbw" in page and "GPU TFLOP/s" in page


def test_render_peak_rss(big_record: Path) -> None:
    code = (
        "import resource, sys; from pathlib import Path; from harness.reporting.html import render_html; "
        "render_html(Path(sys.argv[1])); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(big_record)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    peak_mb = int(done.stdout.split()[-1]) / 1024
    print(f"peak RSS of render_html on 1,000 nodes x 50 metrics: {peak_mb:.0f} MiB")
    assert peak_mb <= MAX_RSS_MB
