"""KubeRay (CNCF AI conformance ``robust_controller``): a RayJob runs the Ray benchmark across worker pods, and the
operator reconciles a RayCluster: a scaled worker group is followed, a deleted worker pod comes back."""

from __future__ import annotations

import pytest

from harness.fixture_types import DeployService, HarnessConfig, Profile, RunWorkload, Target, TestRecord
from harness.measurement import Measurement, marked_emulated
from harness.parsers.sentinel import parse_sentinel
from harness.runners.ray import driver_log, replace_deleted_worker, scale_worker_group
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

pytestmark = [pytest.mark.compute, pytest.mark.requires("kuberay")]

RECONCILE_S = 300  # image pulls of a fresh worker pod are part of what the operator must absorb
CLUSTER, GROUP = "reconcile", "workers"


@pytest.mark.perf
def test_rayjob_runs_the_ray_benchmark(run_rayjob: RunWorkload, record: TestRecord, profile: Profile) -> None:
    """A RayJob's driver runs the Ray benchmark on the RayCluster KubeRay builds: task and actor-call rates and a
    ring all-reduce across actors spread over worker pods, checked element by element."""
    result = run_rayjob("ray-job")
    parsed = parse_sentinel(driver_log(result.logs, "ray-bench"))
    measurements = marked_emulated(parsed.measurements, result.emulated)
    checks = evaluate(profile, "ray-bench", measurements)
    record.add(
        params={"alive_nodes": str(parsed.info.get("alive_nodes", "")), "ray_version": parsed.info.get("ray_version")},
        measurements=measurements,
        checks=checks,
    )
    assert int(parsed.info.get("alive_nodes", 0)) >= 2, "the driver saw a single Ray node: no worker joined"
    assert_passed(checks)


@pytest.mark.conformance_requirement("robust_controller")
def test_kuberay_reconciles_worker_groups(
    deploy_service: DeployService, target: Target, namespace: str, harness_config: HarnessConfig, record: TestRecord
) -> None:
    """The operator follows the RayCluster spec: the worker group scales 1 -> 2 -> 1, and a deleted worker pod is
    replaced by a new one."""
    timeout = harness_config.timeout(RECONCILE_S)
    with deploy_service("ray-cluster", workers=1, max_workers=2):
        initial, startup_s = scale_worker_group(target, namespace, CLUSTER, GROUP, 1, timeout_s=timeout)
        scaled, up_s = scale_worker_group(target, namespace, CLUSTER, GROUP, 2, timeout_s=timeout)
        deleted, replacement, replace_s = replace_deleted_worker(target, namespace, CLUSTER, GROUP, timeout_s=timeout)
        _, down_s = scale_worker_group(target, namespace, CLUSTER, GROUP, 1, timeout_s=timeout)
    record.add(
        params={"initial": ", ".join(initial.names), "scaled": ", ".join(scaled.names), "deleted": deleted},
        measurements=[
            Measurement(metric="reconcile_time", value=v, unit="s", labels={"action": a})
            for a, v in (
                ("initial-workers", startup_s),
                ("scale-up", up_s),
                ("replace-worker", replace_s),
                ("scale-down", down_s),
            )
        ],
    )
    assert replacement != deleted
