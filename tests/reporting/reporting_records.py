"""Synthetic run records for the reporting tests.

Measurements and checks are serialised by the harness's own ``Measurement.to_dict`` and ``Check.to_dict`` (the
checks by evaluating the real ``cpu-only`` profile), so the records have exactly the plugin's format; result
dicts carry every key ``harness.pytest_plugin.pytest_runtest_makereport`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.measurement import Measurement
from harness.thresholds.evaluate import evaluate
from harness.thresholds.loader import load_profile

RUN_INFO = {
    "run_id": "20260101-000000-abcd",
    "started_at": 1767225600.0,
    "finished_at": 1767225900.0,
    "exit_status": 1,
    "harness_version": "0.1.0",
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "python": "3.11.9",
    "options": {"target": "embedded", "reports_dir": "reports"},
    "option_sources": {},
    "target": {"kind": "embedded", "name": "embedded", "server_version": "v1.31.0-aibench"},
    "capabilities": {"nodes": [{"name": "node-a"}]},
    "profile": {"name": "cpu-only", "reason": "matched: accelerator none"},
}


def result(**overrides: Any) -> dict[str, Any]:
    """A result dict with every key the plugin writes; overrides replace keys."""
    base: dict[str, Any] = {
        "id": "suites/control_plane/test_api.py::test_api_up",
        "name": "test_api_up",
        "doc": "The API server answers.",
        "area": "control_plane",
        "markers": ["conformance", "control_plane"],
        "status": "passed",
        "failure_kind": "",
        "message": "",
        "duration_s": 0.5,
        "workload": "",
        "params": {},
        "measurements": [],
        "checks": [],
        "emulated": False,
        "artifacts": "",
    }
    base.update(overrides)
    return base


def fio_result(
    bw_mib: float,
    *,
    iops: float = 5000.0,
    nodeid: str = "suites/storage/test_fio.py::test_fio[local-path]",
    emulated: bool = False,
) -> dict[str, Any]:
    """A fio perf result judged by the real cpu-only profile (status follows the checks)."""
    ms = [
        Measurement(
            metric="bw", value=bw_mib, unit="MiB/s", labels={"job": "seqread", "direction": "read"}, emulated=emulated
        ),
        Measurement(
            metric="iops", value=iops, unit="IOPS", labels={"job": "randread", "direction": "read"}, emulated=emulated
        ),
        Measurement(
            metric="clat",
            value=2.5,
            unit="ms",
            labels={"job": "randread", "direction": "read", "stat": "percentile", "percentile": "99"},
            emulated=emulated,
        ),
    ]
    checks = evaluate(load_profile("cpu-only"), "fio", ms)
    failing = [c for c in checks if c.counts_as_failure]
    return result(
        id=nodeid,
        name=nodeid.rsplit("::", 1)[-1],
        doc="Sequential and random reads from a PVC clear the profile's bars.",
        area="storage",
        markers=["parametrize", "perf", "storage"],
        status="failed" if failing else "passed",
        failure_kind="threshold" if failing else "",
        message="\n".join(str(c) for c in failing),
        duration_s=12.25,
        workload="fio",
        params={"size": "1Gi", "storage_class": "local-path"},
        measurements=[m.to_dict() for m in ms],
        checks=[c.to_dict() for c in checks],
        emulated=emulated,
        artifacts="reports/r/artifacts/fio",
    )


def sample_results() -> list[dict[str, Any]]:
    """One result of each kind: passed perf, failed perf, timeout error, skip, and conformance tests mapped to
    CNCF AI conformance requirements (passed, failed, emulated, two requirements on one test)."""
    return [
        fio_result(450.0),
        fio_result(12.0, nodeid="suites/storage/test_fio.py::test_fio[slow-class]"),
        result(
            id="suites/compute/test_nccl.py::TestNccl::test_allreduce[2-nodes]",
            name="test_allreduce[2-nodes]",
            area="compute",
            status="error",
            failure_kind="timeout",
            message="timed out after 600 s waiting for job nccl to complete; last state: 1/2 pods Running",
            duration_s=600.0,
            workload="nccl-allreduce",
            markers=["compute", "gpu", "perf"],
        ),
        result(
            id="suites/compute/test_gpu.py::test_gpu_visible",
            name="test_gpu_visible",
            area="compute",
            status="skipped",
            message="requires gpu: no node has allocatable nvidia.com/gpu",
            duration_s=0.0,
            markers=["compute", "gpu"],
        ),
        result(
            id="suites/compute/test_isolation.py::test_pod_without_gpu_sees_none",
            name="test_pod_without_gpu_sees_none",
            area="compute",
            doc="A pod without a GPU request sees no GPU device.",
            markers=["compute", "conformance", "conformance_requirement"],
            requirements=["secure_accelerator_access"],
        ),
        result(
            id="suites/compute/test_gang.py::test_gang_all_or_nothing",
            name="test_gang_all_or_nothing",
            area="compute",
            status="failed",
            failure_kind="conformance",
            doc="An over-capacity gang leaves no pod running.",
            message="AssertionError: 2 of 4 pods of the gang are Running (expected 0)\nassert 2 == 0",
            markers=["compute", "conformance", "conformance_requirement"],
            requirement="gang_scheduling",
        ),
        result(
            id="suites/observability/test_dcgm.py::test_dcgm_labels",
            name="test_dcgm_labels",
            area="observability",
            doc="DCGM exporter metrics carry pod and namespace labels.",
            markers=["conformance", "observability"],
            requirements=["accelerator_metrics", "ai_service_metrics"],
            measurements=[
                Measurement(metric="gpu_util", value=87.0, unit="%", labels={"node": "n1"}, emulated=True).to_dict()
            ],
            emulated=True,
        ),
    ]


def write_record(
    run_dir: Path,
    *,
    info: Mapping[str, Any] | None = RUN_INFO,
    results: Sequence[Mapping[str, Any]] = (),
    tail: str = "",
) -> Path:
    """Write ``run.json`` (unless info is None) and ``results.jsonl`` (+ ``tail`` verbatim, e.g. a cut line)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if info is not None:
        (run_dir / "run.json").write_text(json.dumps(dict(info), indent=2, sort_keys=True))
    lines = "".join(json.dumps(dict(r), sort_keys=True) + "\n" for r in results)
    (run_dir / "results.jsonl").write_text(lines + tail)
    return run_dir
