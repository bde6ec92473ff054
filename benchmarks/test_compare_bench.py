"""report compare speed: two records of 1,000 nodes x 50 metrics (50,000 measurements each) in at most 2 s.

A nightly fleet run has one measurement per node and metric; ``report compare`` against last night's run must
stay interactive. Measured: loading both records from disk (JSON parse + normalisation), the key join, direction
lookup through the checks, and formatting the text report (top 100 rows), as CPU time of this process.
Shape: 50 results (one per metric), each with 1,000 per-node measurements and one ``each``-style check per node
on half of the metrics (so direction lookup is exercised on 25,000 measurements); the new run is 3 % lower on
every value, so every row differs and half of them regress against a 2 % gate.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.reporting.compare import compare, format_comparison
from harness.reporting.load import load_record

N_NODES, N_METRICS = 1000, 50
MAX_SECONDS = 2.0


def _write(run_dir: Path, run_id: str, factor: float) -> Path:
    run_dir.mkdir(parents=True)
    info = {
        "run_id": run_id,
        "started_at": 1.0,
        "finished_at": 2.0,
        "exit_status": 0,
        "target": {"kind": "kube", "name": "fleet", "server_version": "v1.33"},
        "profile": {"name": "h100-sxm-8x-ib400", "reason": "bench"},
    }
    (run_dir / "run.json").write_text(json.dumps(info))
    with open(run_dir / "results.jsonl", "w") as handle:
        for metric in range(N_METRICS):
            measurements, checks = [], []
            for node in range(N_NODES):
                labels = {"node": f"node-{node:04d}", "gpu": str(node % 8), "size": "8589934592"}
                value = (100.0 + metric + node % 7) * factor
                measurements.append(
                    {"metric": f"m{metric}", "value": value, "unit": "GB/s", "labels": labels, "emulated": False}
                )
                if metric % 2 == 0:
                    checks.append(
                        {
                            "threshold_id": f"t{metric}",
                            "workload": "nccl-allreduce",
                            "metric": f"m{metric}",
                            "kind": "absolute",
                            "status": "passed",
                            "severity": "fail",
                            "observed": value,
                            "unit": "GB/s",
                            "comparison": ">=",
                            "bar": 50.0,
                            "selector": {"size": "8589934592", "node": "*"},
                            "labels": labels,
                            "matched": 1,
                            "emulated": False,
                            "source": "bench",
                        }
                    )
            result = {
                "id": f"suites/network/test_nccl.py::test_m{metric}",
                "name": f"test_m{metric}",
                "area": "network",
                "status": "passed",
                "workload": "nccl-allreduce",
                "measurements": measurements,
                "checks": checks,
            }
            handle.write(json.dumps(result) + "\n")
    return run_dir


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("compare")
    return _write(root / "base", "base", 1.0), _write(root / "new", "new", 0.97)


@pytest.mark.benchmark(timer=time.process_time)  # CPU time: a busy CI machine must not turn this red
def test_compare_two_50k_measurement_records(benchmark, records) -> None:
    base_dir, new_dir = records

    def run() -> tuple[int, int, int]:
        comparison = compare(load_record(base_dir), load_record(new_dir), fail_on_regression_pct=2.0)
        text = format_comparison(comparison)
        return len(comparison.rows), len(comparison.regressions), len(text)

    rows, regressions, _ = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert rows == N_NODES * N_METRICS
    assert regressions == N_NODES * N_METRICS // 2  # the metrics with a >= check; the rest have no direction
    assert benchmark.stats.stats.median <= MAX_SECONDS, f"median {benchmark.stats.stats.median:.3f} s"


def test_compare_only_join_is_fast(records) -> None:
    """The join alone (records already loaded), so a slow loader cannot hide a slow comparison."""
    base, new = load_record(records[0]), load_record(records[1])
    start = time.process_time()
    comparison = compare(base, new, fail_on_regression_pct=2.0)
    elapsed = time.process_time() - start
    assert len(comparison.rows) == N_NODES * N_METRICS
    assert elapsed <= MAX_SECONDS / 2, f"{elapsed:.3f} s"
