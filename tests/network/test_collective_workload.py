"""The collective baseline workload (tcp-ring) run for real on the embedded target: pods rendezvous through the
headless Service, the ring all-reduce moves real bytes over loopback TCP, and the result is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client
from workload_runs import run_spec

from harness.catalog.spec import load_workload
from harness.parsers.sentinel import parse_sentinel


def test_tcp_ring_allreduce_runs_and_is_exact(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    spec = load_workload("collective-allreduce")
    run = run_spec(api, spec, ns, tmp_path, timeout_s=120, ranks="3", sizes="64K,1M", iters="2", warmup="1")
    blocks = [parse_sentinel(text) for key, text in run.logs.items() if "===AIBENCH-RESULT-BEGIN===" in text]
    assert len(blocks) == 1, f"exactly rank 0 prints a result: {sorted(run.logs)}"
    result = blocks[0]
    assert result.info["backend"] == "tcp-ring" and result.info["nranks"] == 3
    by = {(m.metric, m.labels["size"]): m for m in result.measurements}
    assert {size for _, size in by} == {str(64 << 10), str(1 << 20)}
    for size in (64 << 10, 1 << 20):
        assert by[("wrong", str(size))].value == 0
        algbw, busbw, time_us = (by[(k, str(size))].value for k in ("algbw", "busbw", "time"))
        assert time_us > 0 and algbw > 0
        assert busbw == pytest.approx(algbw * 4 / 3)
        assert algbw == pytest.approx(size / (time_us / 1e6) / 1e9, rel=1e-6)
        assert by[("busbw", str(size))].labels["backend"] == "tcp-ring"
    # every rank logged its ring neighbours, which it found by name through the headless Service
    for key, text in run.logs.items():
        assert "ring connected" in text, f"{key}: {text[-500:]}"
