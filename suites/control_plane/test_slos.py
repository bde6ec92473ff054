"""Control-plane SLOs: pod startup, API call latency and a trivial Job to completion, observed by the client."""

from __future__ import annotations

from typing import Any

import pytest

from harness.cluster.namespaces import run_labels
from harness.measurement import Measurement
from harness.parsers.locust import percentiles
from harness.runners.latency import api_call_latency, image_pull_seconds, pod_startup
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

pytestmark = [pytest.mark.control_plane, pytest.mark.perf]

STARTUP_PODS = 20  # a nightly-sized batch; big enough for a p99 of 20 samples to mean "the worst pod"
API_CALLS = 50
STARTUP_IMAGE = "docker.io/library/busybox:1.36.1"
QUANTILES = (50, 90, 99)


def _stats(metric: str, unit: str, values: list[float], labels: dict[str, str], emulated: bool) -> list[Measurement]:
    at = percentiles(values, QUANTILES)
    out = [
        Measurement(
            metric=metric,
            value=at[q],
            unit=unit,
            labels={**labels, "stat": "percentile", "percentile": str(q)},
            emulated=emulated,
        )
        for q in QUANTILES
    ]
    out += [
        Measurement(metric=metric, value=v, unit=unit, labels={**labels, "stat": "sample"}, emulated=emulated)
        for v in values
    ]
    return out


def test_pod_startup_latency(
    request: pytest.FixtureRequest,
    target: Any,
    namespace: str,
    capabilities: Any,
    harness_config: Any,
    profile: Any,
    record: Any,
) -> None:
    """Pods go from create to Running within the upstream SLO (p99 <= 5 s, image pulls excluded)."""
    labels = run_labels(harness_config.run_id, request.node.nodeid)
    samples = pod_startup(
        target.api_client,
        namespace,
        pods=STARTUP_PODS,
        image=STARTUP_IMAGE,
        labels=labels,
        timeout_s=harness_config.timeout(300),
    )
    pulls = image_pull_seconds(target.api_client, namespace)
    startup = [max(0.0, s - pulls.get(name, 0.0)) for name, s in samples.seconds.items()]
    emulated = all(n.emulated for n in capabilities.nodes)
    measurements = _stats("startup_latency", "s", startup, {}, emulated)
    checks = evaluate(profile, "pod-startup", measurements)
    record.add(
        workload="pod-startup",
        params={"pods": str(STARTUP_PODS), "image": STARTUP_IMAGE, "image_pulls_excluded": str(len(pulls))},
        measurements=measurements,
        checks=checks,
    )
    assert not samples.failed, f"{len(samples.failed)} pods could not start: {'; '.join(samples.failed[:3])}"
    assert_passed(checks)


def test_api_call_latency(
    request: pytest.FixtureRequest, target: Any, namespace: str, harness_config: Any, profile: Any, record: Any
) -> None:
    """Mutating and read API calls answer within the upstream SLOs (p99 <= 1 s single object, <= 5 s list)."""
    labels = run_labels(harness_config.run_id, request.node.nodeid)
    measurements: list[Measurement] = []
    for calls in api_call_latency(target.api_client, namespace, calls=API_CALLS, labels=labels):
        measurements += _stats("api_latency", "ms", list(calls.milliseconds), {"verb": calls.verb}, False)
    checks = evaluate(profile, "api-latency", measurements)
    record.add(
        workload="api-latency", params={"calls_per_verb": str(API_CALLS)}, measurements=measurements, checks=checks
    )
    assert_passed(checks)


def test_trivial_job_latency(run_workload: Any, profile: Any, record: Any) -> None:
    """A one-line Job completes quickly: the control plane's own cost of a Job."""
    result = run_workload("trivial-job")
    measurements = [
        Measurement(metric="job_complete_latency", value=result.duration_s, unit="s", emulated=result.emulated)
    ]
    checks = evaluate(profile, "trivial-job", measurements)
    record.add(measurements=measurements, checks=checks)
    assert result.log_of("main") == "done\n", f"unexpected output: {result.log_of('main')!r}"
    assert_passed(checks)
