"""The capacity and utilisation panel: what the cluster has, what is promised to pods, what is really used."""

from __future__ import annotations

import pytest

from harness.cluster.prometheus import Prometheus
from harness.fixture_types import Capabilities, Target, TestRecord
from harness.observability.panel import capacity_panel

pytestmark = [pytest.mark.observability]


def test_capacity_panel(
    target: Target, capabilities: Capabilities, prometheus_if_any: Prometheus | None, record: TestRecord
) -> None:
    """Allocatable vs requested vs used per node pool and resource (CPU, memory, GPUs, TPUs), idle GPUs and
    GPU fragmentation by gang size: the capacity-planning panel, with the data behind it. Fails when a node
    reports no allocatable CPU or memory, or when Prometheus is there but measures no node's use."""
    panel = capacity_panel(target, prometheus_if_any)
    record.add(
        workload="capacity-panel",
        params={
            "usage_source": panel.usage_source,
            "bottlenecks": "; ".join(panel.bottlenecks) or "none (no pool has >= 90 % of a resource requested)",
            "idle_gpus": ", ".join(f"{node}: {n}" for node, n in sorted(panel.idle_gpus.items())) or "none",
            "usage_gaps": "; ".join(panel.usage_gaps) or "none",
        },
        measurements=panel.measurements(),
    )
    blind = [n.name for n in panel.nodes if not {"cpu", "memory"} <= set(n.allocatable)]
    assert not blind, f"nodes without allocatable cpu/memory in their status: {', '.join(blind)}"
    if prometheus_if_any is not None:
        real = [n for n in panel.nodes if not n.emulated]
        unmeasured = [n.name for n in real if not {"cpu", "memory"} <= set(n.used)]
        assert not unmeasured, (
            f"{panel.usage_source} measures no CPU/memory use for node(s) {', '.join(unmeasured)} "
            f"(queries without series: {'; '.join(panel.usage_gaps) or 'none'}; node-exporter missing there?)"
        )
