"""Monitoring answers: Prometheus is ready and fast, and it scrapes the exporters a platform depends on.

Read-only: these tests query Prometheus (through the API server's service proxy unless --prometheus-url names a
URL) and create nothing.
"""

from __future__ import annotations

import pytest

from harness.cluster.prometheus import FIRST_SAMPLE_S, Prometheus
from harness.fixture_types import Capabilities, Profile, TestRecord
from harness.measurement import Measurement
from harness.observability.scrape import job_problems, node_coverage_problems
from harness.statistics import Method, percentile_measurements
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

pytestmark = [pytest.mark.observability]

WORKLOAD = "prometheus"
QUERIES = 30  # instant queries per expression: enough for a p99 that means "the slow one"
QUANTILES = (50, 99)
#: expressions a dashboard runs all day: a cheap selector and an aggregation over node-exporter's counters
LATENCY_QUERIES = {"selector": "up", "aggregation": "sum by (mode) (node_cpu_seconds_total)"}
NODE_EXPORTER_JOB = r"node-exporter|node_exporter|.*node-exporter.*"
KUBE_STATE_METRICS_JOB = r".*kube-state-metrics.*"


@pytest.mark.perf
def test_prometheus_answers_queries_quickly(prometheus: Prometheus, profile: Profile, record: TestRecord) -> None:
    """Prometheus is ready and answers instant queries (a selector and an aggregation) fast enough for
    dashboards and alerts: query latency p50/p99 over 30 queries each, client-observed."""
    ready_s = prometheus.ready()
    measurements = [Measurement(metric="ready_latency", value=ready_s * 1000, unit="ms")]
    for kind, promql in LATENCY_QUERIES.items():
        first = prometheus.query_with_data(promql, within_s=FIRST_SAMPLE_S)
        assert first.series, f"query {promql!r} returned no series within {FIRST_SAMPLE_S:.0f} s: nothing is scraped"
        results = [prometheus.query(promql) for _ in range(QUERIES)]
        measurements += percentile_measurements(
            "query_latency",
            "ms",
            [r.elapsed_s * 1000 for r in results],
            QUANTILES,
            method=Method.NEAREST_RANK,  # an SLO-style bar (the API read SLO's budget): see harness.statistics
            labels={"query": kind},
        )
    checks = evaluate(profile, WORKLOAD, measurements)
    record.add(
        workload=WORKLOAD,
        params={"prometheus": prometheus.describe, "queries": str(QUERIES), **LATENCY_QUERIES},
        measurements=measurements,
        checks=checks,
    )
    assert_passed(checks)


def test_node_exporter_scraped_on_every_node(
    prometheus: Prometheus, capabilities: Capabilities, record: TestRecord
) -> None:
    """node-exporter targets are scraped and up, and every real node reports ``node_uname_info`` (a node
    missing from it is a node whose CPU, memory and disk nobody sees)."""
    targets = prometheus.targets()
    problems = job_problems(targets, job_pattern=NODE_EXPORTER_JOB, what="node-exporter")
    uname = prometheus.query_with_data("node_uname_info", within_s=FIRST_SAMPLE_S)
    real_nodes = [n.name for n in capabilities.nodes if not n.emulated]
    problems += node_coverage_problems(uname, real_nodes)
    record.add(
        params={
            "prometheus": prometheus.describe,
            "targets_up": str(sum(t.health == "up" for t in targets)),
            "targets": str(len(targets)),
            "nodes_checked": ", ".join(real_nodes),
        }
    )
    assert not problems, "; ".join(problems)


@pytest.mark.requires("monitoring:kube-state-metrics")
def test_kube_state_metrics_scraped(prometheus: Prometheus, capabilities: Capabilities, record: TestRecord) -> None:
    """kube-state-metrics is scraped and up, and reports every node (``kube_node_info``): capacity and
    scheduling dashboards are built on it."""
    problems = job_problems(prometheus.targets(), job_pattern=KUBE_STATE_METRICS_JOB, what="kube-state-metrics")
    problems += node_coverage_problems(
        prometheus.query_with_data("kube_node_info", within_s=FIRST_SAMPLE_S),
        [n.name for n in capabilities.nodes],
        label="node",
    )
    record.add(params={"kube_state_metrics": ", ".join(capabilities.monitoring["kube-state-metrics"])})
    assert not problems, "; ".join(problems)
