"""The redis-cache workload on the embedded target, for real: redis-benchmark in a pod against the target's redis
system service (this machine's redis-server), parsed into ops/s and latency percentiles; bad input fails fast and
clearly (a port nothing answers on, loads beyond the bounds, a --redis-service that does not exist).

All traffic stays on 127.0.0.0/8 (Service and pod IPs of the embedded target are loopback aliases); every load is
bounded in count (requests) and time (max_seconds, the runner's timeout).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventually import eventually
from kubernetes import client
from workload_runs import run_spec

from harness.catalog.spec import catalog_root, load_workload
from harness.config import resolve
from harness.errors import ConfigError, WorkloadFailed
from harness.parsers.redis_benchmark import parse_redis_benchmark, redis_benchmark_measurements
from harness.podnet.ranges import on_this_machine
from harness.runners.job import RunResult

pytestmark = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-benchmark") and shutil.which("redis-cli")),
    reason="needs redis-server, redis-benchmark and redis-cli on this machine (apt-get install -y redis-server)",
)

SUITE = Path(__file__).resolve().parents[2] / "suites" / "storage" / "test_cache_tier.py"


def _pong(host: str, port: int) -> bool:
    done = subprocess.run(
        ["redis-cli", "-h", host, "-p", str(port), "ping"], check=False, capture_output=True, text=True, timeout=5
    )
    return done.stdout.strip() == "PONG"


@pytest.fixture(scope="module")
def redis_address(api: client.ApiClient) -> tuple[str, int]:
    """ClusterIP and port of the host cluster's redis system service, once it answers PING through the Service."""
    core = client.CoreV1Api(api)
    service = eventually(
        lambda: core.list_namespaced_service("kube-system", label_selector="aibench.io/system-service=redis").items,
        timeout_s=30,
        what="the redis system service",
    )[0]
    host, port = service.spec.cluster_ip, service.spec.ports[0].port
    try:
        eventually(lambda: _pong(host, port), timeout_s=30, interval_s=0.2, what=f"PONG from {host}:{port}")
    except AssertionError:
        pods = core.list_namespaced_pod("kube-system", label_selector="app.kubernetes.io/name=redis").items
        tail = core.read_namespaced_pod_log(pods[0].metadata.name, "kube-system")[-300:] if pods else "no pod"
        pytest.fail(f"the embedded redis system service at {host}:{port} never answered PING; its log ends: {tail}")
    return host, port


def _run(api: client.ApiClient, ns: str, tmp_path: Path, timeout_s: float = 120, **params: Any) -> RunResult:
    return run_spec(api, load_workload("redis-cache"), ns, tmp_path, timeout_s=timeout_s, **params)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_redis(host_for_pods: str) -> Iterator[int]:
    """A redis-server of this test where the target's pods reach this machine, on a free port (no persistence),
    stopped by its PID afterwards."""
    port = _free_port()
    argv = ["redis-server", "--bind", host_for_pods, "--port", str(port), "--save", "", "--appendonly", "no"]
    argv += ["--protected-mode", "no"]  # the bridge gateway is not loopback to redis, but only this machine reaches it
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(
            lambda: _pong(host_for_pods, port),
            timeout_s=10,
            interval_s=0.1,
            what=f"redis-server on {host_for_pods}:{port}",
        )
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_workload_measures_the_embedded_redis_service(
    api: client.ApiClient, ns: str, tmp_path: Path, redis_address: tuple[str, int]
) -> None:
    host, port = redis_address
    assert on_this_machine(host), "embedded Service IPs are loopback aliases or pod-network ClusterIPs"
    result = _run(api, ns, tmp_path, host=host, port=port, requests=5000)
    assert not result.emulated and result.params["clients"] == "50" and result.params["value_size"] == "1024"
    parsed = parse_redis_benchmark(result.log_of("benchmark"))
    assert [row.test for row in parsed.rows] == ["SET", "GET"] and parsed.has_header
    measurements = redis_benchmark_measurements(parsed)
    ops = {m.labels["op"]: m.value for m in measurements if m.metric == "ops_per_s"}
    assert set(ops) == {"SET", "GET"} and all(v > 0 for v in ops.values()), ops
    percentiles = {
        (m.labels["op"], m.labels["percentile"]): m.value
        for m in measurements
        if m.metric == "latency" and m.labels.get("stat") == "percentile"
    }
    assert set(percentiles) == {(op, p) for op in ("SET", "GET") for p in ("50", "95", "99")}
    assert all(0 < percentiles[(op, "50")] <= percentiles[(op, "99")] for op in ("SET", "GET")), percentiles


def test_workload_measures_a_redis_server_named_by_address(
    api: client.ApiClient, ns: str, tmp_path: Path, own_redis: int, host_for_pods: str
) -> None:
    result = _run(api, ns, tmp_path, host=host_for_pods, port=own_redis, requests=2000, tests="get", value_size=64)
    parsed = parse_redis_benchmark(result.log_of("benchmark"))
    (row,) = parsed.rows
    assert row.test == "GET" and row.requests_per_s > 0 and set(row.percentiles_ms) == {"50", "95", "99"}


def test_a_port_nothing_answers_on_fails_fast_with_the_reason(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    port = _free_port()
    with pytest.raises(WorkloadFailed) as exc:
        _run(api, ns, tmp_path, timeout_s=60, host="127.0.0.1", port=port, requests=100, wait_s=2)
    message = str(exc.value)
    assert f"Redis at 127.0.0.1:{port} did not answer PING with PONG within wait_s=2" in message, message
    assert "Connection refused" in message and "exit 2" in message, message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"requests": "5000000"}, "requests=5000000 is outside 1..1000000 (the load is bounded)"),
        ({"clients": "fifty"}, "clients must be a whole number (got 'fifty')"),
        ({"tests": "set;flushall"}, "tests must be comma-separated redis-benchmark test names"),
        ({"max_seconds": "3600"}, "max_seconds=3600 is outside 1..540"),
        ({"wait_s": "-1"}, "wait_s must be a whole number (got '-1')"),
    ],
)
def test_loads_beyond_the_bounds_are_refused_before_any_traffic(
    api: client.ApiClient, ns: str, tmp_path: Path, params: dict[str, str], expected: str
) -> None:
    with pytest.raises(WorkloadFailed) as exc:
        _run(api, ns, tmp_path, timeout_s=60, host="127.0.0.1", **params)
    assert expected in str(exc.value), str(exc.value)


def test_workload_spec_declares_its_image_and_bounds() -> None:
    spec = load_workload("redis-cache")
    assert spec.images["redis"] == "docker.io/library/redis:7.0.15" and spec.parser == "redis-benchmark"
    assert spec.params["host"].default is None, "the host is always chosen by the suite"
    assert {"clients", "requests", "value_size", "tests", "max_seconds", "wait_s"} <= set(spec.params)
    assert (catalog_root() / "redis-cache" / "README.md").is_file()


def test_redis_service_option_is_strict() -> None:
    assert resolve({"redis_service": "cache/redis-master"}, {}, {}).redis_service == "cache/redis-master"
    assert resolve({}, {"AIBENCH_REDIS_SERVICE": "kube-system/redis"}, {}).redis_service == "kube-system/redis"
    for bad in ("redis", "cache/", "/redis", "Cache/redis", "cache/redis/x", "cache/redis.master"):
        with pytest.raises(ConfigError, match=r"^--redis-service: must be namespace/name of a Service") as exc:
            resolve({"redis_service": bad}, {}, {})
        assert "\n" not in str(exc.value)


@pytest.mark.timeout(180)
def test_suite_with_a_redis_service_that_does_not_exist_is_a_config_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cache_tier=SUITE.read_text())
    result = pytester.runpytest_subprocess(
        "-p", "no:locust", "-p", "no:cacheprovider", "--redis-service", "default/no-such-redis", "-rA"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    runs = [p for p in (pytester.path / "reports").iterdir() if p.is_dir() and p.name != "latest"]
    (record,) = [json.loads(line) for line in (runs[0] / "results.jsonl").read_text().splitlines()]
    assert record["status"] == "error" and record["failure_kind"] == "harness", record
    assert record["message"] == "--redis-service default/no-such-redis: no such Service", record
