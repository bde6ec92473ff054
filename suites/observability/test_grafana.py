"""Grafana answers, and GPU dashboards exist where it lets anonymous users search."""

from __future__ import annotations

import json

import pytest

from harness.cluster.prometheus import ServiceHttp
from harness.fixture_types import Capabilities, Target, TestRecord

pytestmark = [pytest.mark.observability, pytest.mark.requires("monitoring:grafana")]

GPU_DASHBOARD_QUERIES = ("GPU", "DCGM")


def test_grafana_is_healthy_with_gpu_dashboards(target: Target, capabilities: Capabilities, record: TestRecord) -> None:
    """Grafana's /api/health reports its database ok, and (when anonymous search is allowed) at least one
    dashboard matches GPU or DCGM (NVIDIA's dcgm-exporter dashboard is the usual one)."""
    grafana = ServiceHttp(capabilities.monitoring["grafana"][0], cluster=target, what="Grafana")
    health = json.loads(grafana.text("/api/health"))
    record.add(params={"grafana": grafana.describe, "version": str(health.get("version", ""))})
    assert health.get("database") == "ok", f"{grafana.describe}: /api/health says database={health.get('database')}"
    titles: list[str] = []
    for query in GPU_DASHBOARD_QUERIES:
        status, body, _ = grafana.get("/api/search", [("query", query), ("type", "dash-db")])
        if status in (401, 403):
            record.add(params={"dashboards": f"not checked: search needs credentials (HTTP {status})"})
            return
        assert status == 200, f"{grafana.describe}: /api/search answered HTTP {status}"
        titles += [d.get("title", "") for d in json.loads(body)]
    record.add(params={"gpu_dashboards": ", ".join(sorted(set(titles))) or "none"})
    assert titles, f"{grafana.describe} has no dashboard matching {' or '.join(GPU_DASHBOARD_QUERIES)}"
