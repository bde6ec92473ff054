"""The replacement-storm case: workloads whose pods fail, left alone for a minute on the embedded target.

Three cases run side by side for STORM_S seconds, each in its own namespace, on this machine as the node (real
processes), the server in its own process (the image-only Deployment, Pending in CreateContainerError, has its own
benchmark: test_image_only_storm.py):

- ``crashloop``: a Deployment whose command exits 1 at once. restartPolicy Always keeps the pod and restarts the
  container with back-off (kube's CrashLoopBackOff): one pod, ever.
- ``deadline``: a Deployment whose pods really become Failed, 1 s after they start (``activeDeadlineSeconds: 1``,
  DeadlineExceeded) without ever being ready (a readiness probe that fails): the ReplicaSet replaces them through
  kube's controller rate limiter (5 ms doubling), which only a ready ReplicaSet resets. (Pods that are ready for a
  second and then fail are replaced about once a second, on kube as here: each ready moment resets the back-off.)
- ``daemon-deadline``: the same template in a DaemonSet: failedPodsBackoff (1 s doubling) paces the replacements.

Pods ever created are counted from one pod watch over the whole window (distinct uids of ADDED events per
namespace). Server CPU is the server process's user+system time over the window divided by its length (one core =
100 %); pod processes are not the server and are not counted.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from kubernetes import client
from support import ServerProcess, new_namespace

STORM_S = 60.0
MAX_SERVER_CPU_PCT = 5.0
# Upper bounds from kube's schedules (see the module doc), with slack for reconcile and container-start latency.
MAX_PODS = {"crashloop": 1, "deadline": 20, "daemon-deadline": 9}


def _deployment(name: str, container: dict[str, Any], **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 0, "containers": [container], **pod_spec},
            },
        },
    }


def _daemonset(name: str, container: dict[str, Any], **pod_spec: Any) -> dict[str, Any]:
    body = _deployment(name, container, **pod_spec)
    body["kind"] = "DaemonSet"
    del body["spec"]["replicas"]
    return body


SLEEPER = {
    "name": "main",
    "image": "busybox:1.36",
    "command": ["sleep", "3600"],
    "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1},
}
CASES: dict[str, dict[str, Any]] = {
    "crashloop": _deployment("storm", {"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "exit 1"]}),
    "deadline": _deployment("storm", SLEEPER, activeDeadlineSeconds=1),
    "daemon-deadline": _daemonset("storm", SLEEPER, activeDeadlineSeconds=1),
}


class PodCounter(threading.Thread):
    """Counts distinct pods ADDED per namespace from one raw watch over all namespaces."""

    def __init__(self, core: client.CoreV1Api, resource_version: str, until: float) -> None:
        super().__init__(daemon=True)
        self.core = core
        self.rv = resource_version
        self.until = until
        self.seen: dict[str, set[str]] = defaultdict(set)
        self.phases: dict[str, dict[str, str]] = defaultdict(dict)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while time.monotonic() < self.until:
                remaining = self.until - time.monotonic()
                stream = self.core.list_pod_for_all_namespaces(
                    watch=True,
                    resource_version=self.rv,
                    timeout_seconds=max(1, int(remaining)),
                    _preload_content=False,
                    _request_timeout=remaining + 5,
                )
                pending = b""
                try:
                    for chunk in stream.stream(65536):
                        pending += chunk
                        *lines, pending = pending.split(b"\n")
                        for line in lines:
                            if line.strip():
                                self._on(json.loads(line))
                finally:
                    stream.release_conn()
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def _on(self, event: dict[str, Any]) -> None:
        obj = event["object"]
        meta = obj["metadata"]
        self.rv = meta.get("resourceVersion", self.rv)
        if event["type"] in ("ADDED", "MODIFIED"):
            self.seen[meta["namespace"]].add(meta["uid"])
            self.phases[meta["namespace"]][meta["uid"]] = (obj.get("status") or {}).get("phase", "")


def test_failing_pods_do_not_storm(start_server: Any, benchmark: Any) -> None:
    server: ServerProcess = start_server(None)
    api = server.api_client()
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    namespaces = {case: new_namespace(core, f"storm-{case}") for case in CASES}
    rv = core.list_pod_for_all_namespaces(limit=1).metadata.resource_version
    cpu_before = server.cpu_seconds()
    started = time.monotonic()
    counter = PodCounter(core, rv, started + STORM_S)
    counter.start()
    for case, body in CASES.items():
        if body["kind"] == "Deployment":
            apps.create_namespaced_deployment(namespaces[case], body)
        else:
            apps.create_namespaced_daemon_set(namespaces[case], body)
    counter.join(STORM_S + 30)
    elapsed = time.monotonic() - started
    cpu_pct = 100.0 * (server.cpu_seconds() - cpu_before) / elapsed
    assert counter.error is None, counter.error
    created = {case: len(counter.seen[ns]) for case, ns in namespaces.items()}
    failed = {
        case: sum(1 for phase in counter.phases[ns].values() if phase == "Failed") for case, ns in namespaces.items()
    }
    benchmark.extra_info.update(
        storm_s=STORM_S,
        pods_ever_created=created,
        pods_failed=failed,
        server_cpu_pct=round(cpu_pct, 2),
    )
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(f"pods ever created in {STORM_S:g}s: {created}; failed: {failed}; server CPU {cpu_pct:.2f} %")
    assert created["crashloop"] == 1
    assert failed["deadline"] >= 3, "the deadline case must really make pods Failed, else it measures nothing"
    assert failed["daemon-deadline"] >= 3, "the DaemonSet case must really make pods Failed"
    for case, limit in MAX_PODS.items():
        assert 1 <= created[case] <= limit, f"{case}: {created[case]} pods in {STORM_S:g}s (at most {limit})"
    assert cpu_pct < MAX_SERVER_CPU_PCT


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-s"])
