"""Cache tier: GET/SET throughput and latency percentiles of a Redis Service at a fixed concurrency.

The Redis is the Service named with ``--redis-service namespace/name`` (its ClusterIP and port read from the API),
else the target's ``redis`` platform service (label ``aibench.io/system-service=redis``; on the embedded target
this machine's redis-server). The recorded params say which server answered, so the report never passes off a
stand-in as the platform's cache.
"""

from __future__ import annotations

import pytest

from harness.cluster.capabilities import ServiceRef
from harness.cluster.references import resolve_service
from harness.fixture_types import Capabilities, HarnessConfig, Profile, RunWorkload, Target, TestRecord
from harness.measurement import marked_emulated
from harness.parsers.redis_benchmark import parse_redis_benchmark, redis_benchmark_measurements
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

pytestmark = [pytest.mark.storage]

WORKLOAD = "redis-cache"
REDIS_PORT_NAMES = ("redis", "tcp-redis", "main")


@pytest.fixture
def redis_service(target: Target, capabilities: Capabilities, harness_config: HarnessConfig) -> ServiceRef:
    """The Redis under test: the user's Service, else the target's redis platform service (skip when neither)."""
    if harness_config.redis_service:
        return resolve_service(
            target.api_client,
            harness_config.redis_service,
            option="--redis-service",
            port_names=REDIS_PORT_NAMES,
            default_port=6379,
        )
    if reason := capabilities.missing("service:redis"):
        pytest.skip(f"requires service:redis: {reason}; or name one with --redis-service namespace/name")
    return capabilities.system_services["redis"]


@pytest.mark.perf
def test_cache_tier_get_set(
    run_workload: RunWorkload, record: TestRecord, profile: Profile, redis_service: ServiceRef
) -> None:
    """The cache tier answers fast enough: GET and SET throughput (ops/s) and latency percentiles at 50 parallel
    clients and 1 KiB values clear the profile's bars."""
    service = f"{redis_service.namespace}/{redis_service.name}: {redis_service.description or 'Redis service'}"
    record.add(params={"service": service})
    result = run_workload(WORKLOAD, host=redis_service.cluster_ip, port=redis_service.port)
    parsed = parse_redis_benchmark(result.log_of("benchmark"))
    measurements = marked_emulated(redis_benchmark_measurements(parsed), result.emulated)
    checks = evaluate(profile, WORKLOAD, measurements)
    record.add(measurements=measurements, checks=checks)
    assert_passed(checks)
