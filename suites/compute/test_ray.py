"""Ray: the runtime works on the target, measured with Ray in local mode inside a pod (``robust_controller`` with
KubeRay lives in test_ray_operator.py)."""

from __future__ import annotations

import pytest

from harness.fixture_types import Profile, RunWorkload, TestRecord
from harness.measurement import marked_emulated
from harness.parsers.sentinel import parse_sentinel
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

pytestmark = [pytest.mark.compute]

WORKLOAD = "ray-bench"


@pytest.mark.perf
def test_ray_local_mode_throughput(run_workload: RunWorkload, record: TestRecord, profile: Profile) -> None:
    """Ray in local mode inside one pod: remote-task and actor-call rates, and a ring all-reduce across actors
    through Ray's object store whose result is checked element by element."""
    result = run_workload(WORKLOAD)
    parsed = parse_sentinel(result.log_of("ray"))
    measurements = marked_emulated(parsed.measurements, result.emulated)
    checks = evaluate(profile, WORKLOAD, measurements)
    record.add(
        params={"ray_version": str(parsed.info.get("ray_version", "")), "transport": "ray-object-store"},
        measurements=measurements,
        checks=checks,
    )
    assert_passed(checks)
