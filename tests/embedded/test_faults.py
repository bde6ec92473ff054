"""Fault injection of the embedded target, seen the way the official client sees a misbehaving real cluster."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eventually import eventually
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from harness.embedded.cluster import EmbeddedCluster


def _cm(name: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"k": name})


@pytest.fixture
def host_faults(host_cluster: EmbeddedCluster) -> Iterator[EmbeddedCluster]:
    try:
        yield host_cluster
    finally:
        host_cluster.faults.reset()


@pytest.fixture
def emulated_faults(emulated_cluster: EmbeddedCluster) -> Iterator[EmbeddedCluster]:
    try:
        yield emulated_cluster
    finally:
        emulated_cluster.faults.reset()


# ----------------------------------------------------------------------------- API errors
@pytest.fixture
def no_retry_api(host_cluster: EmbeddedCluster) -> client.ApiClient:
    """A client whose urllib3 pool does not retry: by default it re-sends idempotent requests answered 429 with a
    Retry-After header (up to 3 times, sleeping as told), which would hide the error and cost seconds here."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(host_cluster.kubeconfig_path), client_configuration=configuration)
    configuration.retries = False
    return client.ApiClient(configuration)


@pytest.mark.parametrize(("code", "reason"), [(500, "InternalError"), (429, "TooManyRequests")])
def test_injected_errors_reach_the_client_and_stop_on_reset(
    host_faults: EmbeddedCluster, no_retry_api: client.ApiClient, ns: str, code: int, reason: str
) -> None:
    core = client.CoreV1Api(no_retry_api)
    core.create_namespaced_config_map(ns, _cm("before"))
    host_faults.faults.error_code = code
    host_faults.faults.error_path_contains = f"/namespaces/{ns}/configmaps"
    host_faults.faults.error_rate = 1.0
    for call in (
        lambda: core.list_namespaced_config_map(ns),
        lambda: core.read_namespaced_config_map("before", ns),
        lambda: core.create_namespaced_config_map(ns, _cm("during")),
    ):
        with pytest.raises(ApiException) as exc:
            call()
        assert exc.value.status == code
        status = json.loads(exc.value.body)
        assert status["kind"] == "Status" and status["reason"] == reason and status["code"] == code
        if code == 429:
            assert exc.value.headers["Retry-After"] == "1"
        else:
            assert "Retry-After" not in exc.value.headers
    # Paths outside error_path_contains are untouched, and nothing was written by the refused create.
    assert core.list_namespaced_secret(ns).items is not None
    host_faults.faults.reset()
    assert [
        c.metadata.name for c in core.list_namespaced_config_map(ns).items if c.metadata.name != "kube-root-ca.crt"
    ] == ["before"]
    core.create_namespaced_config_map(ns, _cm("after"))
    assert core.read_namespaced_config_map("after", ns).data == {"k": "after"}


def test_partial_error_rate_fails_some_requests_only(
    host_faults: EmbeddedCluster, api: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(api)
    host_faults.faults.error_path_contains = f"/namespaces/{ns}/configmaps"
    host_faults.faults.error_rate = 0.5
    outcomes: list[int] = []
    for _ in range(40):
        try:
            core.list_namespaced_config_map(ns)
            outcomes.append(200)
        except ApiException as exc:
            outcomes.append(exc.status)
    assert set(outcomes) == {200, 500}


# ----------------------------------------------------------------------------- watches
def _stream(core: client.CoreV1Api, ns: str, rv: str, timeout_s: int = 10) -> Iterator[dict[str, Any]]:
    return watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=timeout_s)


def test_dropped_watch_resumes_from_last_resource_version(
    host_faults: EmbeddedCluster, api: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("seen"))
    host_faults.faults.watch_drop_after = 0.3
    started = time.monotonic()
    first = [
        (e["type"], e["object"].metadata.name, e["object"].metadata.resource_version) for e in _stream(core, ns, rv)
    ]
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 3, f"the watch asked for 10 s should be cut after ~0.3 s, took {elapsed:.2f} s"
    assert [(t, n) for t, n, _ in first] == [("ADDED", "seen")]
    last_rv = first[-1][2]
    # Changes made while no watch is open are what a resume must deliver, in order, exactly once.
    core.create_namespaced_config_map(ns, _cm("missed-1"))
    core.patch_namespaced_config_map("seen", ns, {"data": {"k": "changed"}})
    core.delete_namespaced_config_map("missed-1", ns)
    resumed = [(e["type"], e["object"].metadata.name) for e in _stream(core, ns, last_rv)]
    assert resumed == [("ADDED", "missed-1"), ("MODIFIED", "seen"), ("DELETED", "missed-1")]


def test_watch_delay_holds_back_live_events(host_faults: EmbeddedCluster, api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("slow"))
    host_faults.faults.watch_delay = 0.4
    received: list[tuple[str, float]] = []
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=5):
            received.append((event["type"], time.monotonic()))
            if len(received) == 2:
                w.stop()

    thread = threading.Thread(target=consume)
    opened = time.monotonic()
    thread.start()
    # The backlog (the ADDED) is sent as soon as the watch opens; only live events are held back.
    eventually(lambda: received, what="backlog event")
    assert received[0][0] == "ADDED" and received[0][1] - opened < 0.4
    changed = time.monotonic()
    core.patch_namespaced_config_map("slow", ns, {"data": {"k": "v2"}})
    thread.join(timeout=5)
    assert [t for t, _ in received] == ["ADDED", "MODIFIED"]
    assert received[1][1] - changed >= 0.4


def test_compaction_makes_resume_gone_and_relist_recovers(
    host_faults: EmbeddedCluster, api: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(api)
    rv = core.create_namespaced_config_map(ns, _cm("old")).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("newer"))
    host_faults.store.compact()
    with pytest.raises(ApiException) as exc:
        list(_stream(core, ns, rv, timeout_s=1))
    assert exc.value.status == 410
    # What an informer does next: list again and watch from the list's version.
    listing = core.list_namespaced_config_map(ns)
    assert {"old", "newer"} <= {c.metadata.name for c in listing.items}
    core.create_namespaced_config_map(ns, _cm("after-relist"))
    w = watch.Watch()
    events = []
    for event in w.stream(
        core.list_namespaced_config_map, ns, resource_version=listing.metadata.resource_version, timeout_seconds=5
    ):
        events.append((event["type"], event["object"].metadata.name))
        w.stop()
    assert events == [("ADDED", "after-relist")]


# ----------------------------------------------------------------------------- stuck Pending
def _pod_spec() -> dict[str, Any]:
    return {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "infinity"]}]}


def test_pending_prefix_holds_pod_until_removed(
    emulated_faults: EmbeddedCluster, emulated_api: client.ApiClient, emulated_ns: str
) -> None:
    core, ns, faults = client.CoreV1Api(emulated_api), emulated_ns, emulated_faults.faults
    faults.pending_pod_prefixes.add("held-")
    core.create_namespaced_pod(
        ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "held-1"}, "spec": _pod_spec()}
    )
    core.create_namespaced_pod(
        ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "free-1"}, "spec": _pod_spec()}
    )
    # The scheduler keeps working on other pods while the held one waits.
    eventually(lambda: core.read_namespaced_pod("free-1", ns).status.phase == "Running", what="free-1 running")
    assert emulated_faults.wait_idle(5)
    time.sleep(0.3)  # a few re-check periods of the scheduler: the hold must last
    held = core.read_namespaced_pod("held-1", ns)
    assert held.status.phase == "Pending" and held.spec.node_name is None
    # Unlike an unschedulable pod, a held one was never tried: no PodScheduled condition, no FailedScheduling.
    assert not [c for c in held.status.conditions or [] if c.type == "PodScheduled"]
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=held-1").items
    assert [e.reason for e in events] == []

    faults.pending_pod_prefixes.discard("held-")
    pod = eventually(
        lambda: (p := core.read_namespaced_pod("held-1", ns)).status.phase == "Running" and p,
        timeout_s=5,
        what="held-1 to be scheduled once released",
    )
    assert pod.spec.node_name and pod.metadata.annotations["aibench.io/emulated"] == "true"
    scheduled = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert scheduled.status == "True"


# ----------------------------------------------------------------------------- container faults (host node)
def test_failing_container_fault_exits_1(host_faults: EmbeddedCluster, api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    host_faults.faults.container_faults["doomed"] = "fail"
    core.create_namespaced_pod(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "doomed"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "doomed", "image": "python:3.11-slim", "command": [sys.executable, "-c", "print('fine')"]},
                    {
                        "name": "healthy",
                        "image": "python:3.11-slim",
                        "command": [sys.executable, "-c", "print('fine')"],
                    },
                ],
            },
        },
    )
    pod = eventually(
        lambda: (p := core.read_namespaced_pod("doomed", ns)).status.phase == "Failed" and p,
        timeout_s=5,
        what="pod with a failing container to fail",
    )
    states = {cs.name: cs.state.terminated for cs in pod.status.container_statuses}
    assert states["doomed"].exit_code == 1 and states["doomed"].reason == "Error"
    assert states["healthy"].exit_code == 0 and states["healthy"].reason == "Completed"
    assert "injected container failure" in core.read_namespaced_pod_log("doomed", ns, container="doomed")
    assert core.read_namespaced_pod_log("doomed", ns, container="healthy") == "fine\n"


def test_hanging_container_fault_runs_job_into_its_deadline(
    host_faults: EmbeddedCluster, api: client.ApiClient, ns: str
) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    host_faults.faults.container_faults["stuck"] = "hang"
    batch.create_namespaced_job(
        ns,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "stuck"},
            "spec": {
                "activeDeadlineSeconds": 2,
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "stuck", "image": "busybox:1.36", "command": ["true"]}],
                    }
                },
            },
        },
    )
    pod = eventually(
        lambda: [
            p
            for p in core.list_namespaced_pod(ns, label_selector="job-name=stuck").items
            if p.status.phase == "Running"
        ],
        what="job pod running",
    )[0]
    assert pod.status.container_statuses[0].state.running is not None  # `true` would have exited at once

    def failed() -> client.V1JobCondition | None:
        conditions = batch.read_namespaced_job_status("stuck", ns).status.conditions or []
        return next((c for c in conditions if c.type == "Failed" and c.status == "True"), None)

    condition = eventually(failed, timeout_s=5, what="job to fail on its deadline")
    assert condition.reason == "DeadlineExceeded"
    assert condition.message == "Job was active longer than specified deadline"
    status = batch.read_namespaced_job_status("stuck", ns).status
    assert not status.active and not status.succeeded
    # The hanging process is stopped: the Job controller deletes its pod, which goes once the kubelet has killed
    # the process and cleaned up (waiting for that also keeps the process from outliving this test).
    eventually(
        lambda: all(
            p.status.phase in ("Failed", "Succeeded")
            for p in core.list_namespaced_pod(ns, label_selector="job-name=stuck").items
        ),
        timeout_s=5,
        what="job pod to be stopped and removed",
    )
