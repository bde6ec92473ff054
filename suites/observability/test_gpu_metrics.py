"""Accelerator metrics (CNCF AI conformance ``accelerator_metrics``): every GPU node is visible to monitoring."""

from __future__ import annotations

from typing import Any

import pytest

from harness.cluster.prometheus import FIRST_SAMPLE_S, Prometheus
from harness.observability.gpu_metrics import (
    REQUIRED_METRICS,
    coverage,
    coverage_problems,
    profiling_metrics,
    xid_problems,
)

pytestmark = [pytest.mark.observability]

DCGM_SERIES = '{__name__=~"DCGM_FI_DEV_.*|DCGM_FI_PROF_.*"}'


@pytest.mark.requires("gpu")
@pytest.mark.conformance_requirement("accelerator_metrics")
def test_gpu_metrics_cover_every_gpu_node(prometheus: Prometheus, capabilities: Any, record: Any) -> None:
    """dcgm-exporter's default metrics (utilisation, framebuffer used, power, temperature, XID errors) exist for
    every GPU of every real GPU node, and no GPU reports an XID error; DCP profiling metrics are reported as
    available or not."""
    gpu_nodes = {n.name: n.gpus for n in capabilities.gpu_nodes if not n.emulated}
    if not gpu_nodes:
        pytest.skip("every GPU node is emulated: no exporter runs on them")
    result = prometheus.query_with_data(DCGM_SERIES, within_s=FIRST_SAMPLE_S)
    nodes = coverage(result.series, gpu_nodes)
    dcp = profiling_metrics(result.series)
    record.add(
        params={
            "prometheus": prometheus.describe,
            "query": DCGM_SERIES,
            "required_metrics": ", ".join(REQUIRED_METRICS),
            "profiling_metrics": ", ".join(dcp) or "not available (no DCGM_FI_PROF_* series)",
            "coverage": "; ".join(f"{n.node}: {n.gpus_reported}/{n.gpus_allocatable} GPUs" for n in nodes),
        }
    )
    assert result.series, f"query {DCGM_SERIES!r} returned no series: dcgm-exporter is not scraped"
    problems = coverage_problems(nodes) + xid_problems(result.series)
    assert not problems, "; ".join(problems)
