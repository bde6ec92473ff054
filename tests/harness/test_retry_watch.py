"""The API client's retry policy and the resilient watch, against the embedded target's fault injection.

Retries: 429 survived for every verb (honouring Retry-After), 5xx for idempotent verbs, a plain 500 to a POST
reaching the caller as one explained line, every retry counted, the budget bounded. Watch: a stream the server cuts
is resumed from the last resourceVersion; a resume that meets a compacted store (410 Gone) lists again. Bodies are
plain dicts: model classes imported before another test re-imported the client would fail its validation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.retry import MAX_RETRIES, ApiRetry, RetryCounter, api_retry, explain_api_error
from harness.cluster.target import client_from_kubeconfig
from harness.cluster.watch import WatchStats, resilient_watch
from harness.embedded.cluster import EmbeddedCluster


@pytest.fixture
def faults(host_cluster: EmbeddedCluster) -> Iterator[EmbeddedCluster]:
    try:
        yield host_cluster
    finally:
        host_cluster.faults.reset()
        host_cluster.faults.error_methods = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


@pytest.fixture
def counted(host_cluster: EmbeddedCluster) -> tuple[client.ApiClient, RetryCounter]:
    counter = RetryCounter()
    return client_from_kubeconfig(str(host_cluster.kubeconfig_path), None, counter), counter


@pytest.mark.parametrize(
    ("method", "status", "retry_after", "retried"),
    [
        ("GET", 429, True, True),
        ("POST", 429, True, True),  # refused before it was acted on: safe for any verb
        ("PATCH", 429, False, True),
        ("GET", 500, False, True),
        ("PUT", 503, False, True),
        ("DELETE", 502, False, True),
        ("POST", 500, False, False),  # may have been applied
        ("PATCH", 500, False, False),
        ("POST", 503, True, True),  # the server asked for a retry (client-go honours that for every verb)
        ("GET", 404, False, False),
        ("GET", 409, False, False),
    ],
)
def test_policy_matrix(method: str, status: int, retry_after: bool, retried: bool) -> None:
    assert api_retry().is_retry(method, status, retry_after) is retried


def test_budget_is_bounded() -> None:
    policy: Any = ApiRetry(total=MAX_RETRIES, status=MAX_RETRIES, status_forcelist={500}, counter=RetryCounter())
    for _ in range(MAX_RETRIES):
        assert policy.is_retry("GET", 500)
        policy = policy.new(total=policy.total - 1)
    assert not policy.is_retry("GET", 500)


def test_throttling_is_survived_and_counted(faults: EmbeddedCluster, counted: Any, ns: str) -> None:
    api, counter = counted
    core = client.CoreV1Api(api)
    faults.faults.error_code = 429  # Retry-After: 1
    faults.faults.error_rate = 0.5  # the injector's dice are seeded: 0.5 hits within the first rolls
    for i in range(3):  # creates and reads: 429 is retried for every verb
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"c{i}"}})
        core.read_namespaced_config_map(f"c{i}", ns)
    assert counter.snapshot().get("429", 0) > 0
    assert set(counter.snapshot()) == {"429"}


def test_server_errors_retried_for_reads_not_for_creates(faults: EmbeddedCluster, counted: Any, ns: str) -> None:
    api, counter = counted
    core = client.CoreV1Api(api)
    faults.faults.error_code = 500
    faults.faults.error_rate = 0.3
    faults.faults.error_methods = frozenset({"GET"})
    for _ in range(20):
        core.list_namespaced_config_map(ns)
    assert counter.snapshot().get("500", 0) > 0
    before = counter.total
    faults.faults.error_rate = 1.0
    faults.faults.error_methods = frozenset({"POST"})
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "once"}})
    assert counter.total == before  # not repeated
    message = explain_api_error(exc.value)
    assert message.startswith("API server answered 500 Internal Server Error: Internal error occurred: injected fault")
    assert "\n" not in message and "idempotent" in message


def _configmap(core: client.CoreV1Api, ns: str, name: str) -> None:
    core.create_namespaced_config_map(ns, {"metadata": {"name": name}})


def _watch(core: client.CoreV1Api, ns: str, stats: WatchStats, until: str, **kwargs: Any) -> list[tuple[str, str]]:
    """Events of the namespace's ConfigMaps (type, name) until one named ``until`` arrives."""
    stop = threading.Event()
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        for event in resilient_watch(
            core.list_namespaced_config_map, ns, stop=stop, deadline=time.monotonic() + 30, stats=stats, **kwargs
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if event["object"].metadata.name == until:
                stop.set()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    return seen, reader  # type: ignore[return-value]


def test_watch_resumes_after_drops(faults: EmbeddedCluster, counted: Any, ns: str) -> None:
    api, _ = counted
    core = client.CoreV1Api(api)
    faults.faults.watch_drop_after = 0.3
    stats = WatchStats()
    seen, reader = _watch(core, ns, stats, "third")  # type: ignore[misc]
    for name in ("first", "second", "third"):
        time.sleep(0.5)  # each event arrives on a stream opened after the previous one was cut
        _configmap(core, ns, name)
    reader.join(timeout=20)
    assert not reader.is_alive()
    assert stats.reconnects >= 2 and stats.relists == 0
    assert seen == [("ADDED", "first"), ("ADDED", "second"), ("ADDED", "third")]  # nothing lost, nothing twice


def test_watch_relists_when_its_resume_point_was_compacted(faults: EmbeddedCluster, counted: Any, ns: str) -> None:
    api, _ = counted
    core = client.CoreV1Api(api)
    old = core.list_namespaced_config_map(ns).metadata.resource_version
    _configmap(core, ns, "missed")  # happens while the watcher is away ...
    faults.store.compact()  # ... and the store forgets it: resuming from `old` is 410 Gone
    stats = WatchStats()
    seen, reader = _watch(core, ns, stats, "after", resource_version=old)  # type: ignore[misc]
    time.sleep(0.5)
    _configmap(core, ns, "after")
    reader.join(timeout=20)
    assert not reader.is_alive()
    assert stats.relists == 1
    assert ("ADDED", "missed") in seen and seen[-1] == ("ADDED", "after")  # the relist delivered what was missed
