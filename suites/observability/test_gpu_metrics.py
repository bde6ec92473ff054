"""Accelerator metrics (CNCF AI conformance ``accelerator_metrics``): every GPU node is visible to monitoring."""

from __future__ import annotations

import pytest

from harness.cluster.prometheus import FIRST_SAMPLE_S, Prometheus
from harness.fixture_types import Capabilities, RunWorkload, TestRecord
from harness.measurement import Measurement
from harness.observability.gpu_load import observe_gpu_load
from harness.observability.gpu_metrics import (
    REQUIRED_METRICS,
    UTIL,
    coverage,
    coverage_problems,
    profiling_metrics,
    utilisation_problems,
    xid_problems,
)
from harness.probes.accelerators import placement_for

pytestmark = [pytest.mark.observability]

DCGM_SERIES = '{__name__=~"DCGM_FI_DEV_.*|DCGM_FI_PROF_.*"}'


@pytest.mark.requires("gpu")
@pytest.mark.conformance_requirement("accelerator_metrics")
def test_gpu_metrics_cover_every_gpu_node(
    prometheus: Prometheus, capabilities: Capabilities, record: TestRecord
) -> None:
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


LOAD_WORKLOAD = "cuda-burn"
LOAD_SECONDS = 60  # several scrape intervals of a 15-30 s Prometheus, so the load is sampled at least twice


@pytest.mark.requires("gpu", "real-hardware")
@pytest.mark.conformance_requirement("accelerator_metrics")
def test_gpu_utilisation_follows_a_pod_and_is_attributed(
    prometheus: Prometheus, run_workload: RunWorkload, namespace: str, capabilities: Capabilities, record: TestRecord
) -> None:
    """While a test pod burns one GPU, DCGM_FI_DEV_GPU_UTIL of that GPU carries the pod's namespace, pod and
    container labels and rises; after the pod ends it falls back."""
    node = capabilities.gpu_nodes[0]
    result, seen = observe_gpu_load(
        prometheus,
        lambda: run_workload(
            LOAD_WORKLOAD, gpus="1", burn_s=str(LOAD_SECONDS), **placement_for(node, pin_node=True).params()
        ),
        namespace=namespace,
        pod_prefix=f"{LOAD_WORKLOAD}-",
    )
    record.add(
        params={
            "node": node.name,
            "pod": seen.pod or "(not seen in any series)",
            "gpus": ", ".join(sorted(seen.gpus)) or "none attributed",
            "polls": str(seen.polls),
        },
        measurements=[
            Measurement(
                metric=UTIL, value=value, unit="%", labels={"phase": phase, "pod": seen.pod, "namespace": namespace}
            )
            for phase, value in (("idle", seen.idle_before), ("load", seen.under_load), ("after", seen.idle_after))
            if value is not None
        ],
    )
    problems = seen.attribution_problems(container="bench")
    if seen.gpus:
        problems += utilisation_problems(
            idle_before=seen.idle_before or 0.0, under_load=seen.under_load, idle_after=seen.idle_after or 0.0
        )
    assert result is not None
    assert not problems, "; ".join(problems)
