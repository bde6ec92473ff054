"""Client-observed control-plane latencies: pod startup, API calls, a trivial Job to completion.

Timestamps in Kubernetes objects have one-second resolution, too coarse for a control plane that starts a pod in
a few hundred milliseconds, so every latency here is observed by the client on a monotonic clock: from the create
call to the moment a watch delivers the state (Running with every container ready, or Job Complete). On a real
cluster this includes image pulls unless the image is present on the nodes; the suite runs one warm-up pod per
node first so the measured pods find the image cached (kubelet's IfNotPresent).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from harness.cluster.fields import container_statuses, pod_status
from harness.cluster.target import ClusterHandle
from harness.cluster.watch import WatchStats, resilient_watch
from harness.errors import WaitTimeout, WorkloadFailed
from harness.runners.failures import pod_blocker

MAX_PODS = 1000  # bounded: a mistyped batch size must not flood a production cluster


@dataclass(frozen=True, slots=True, kw_only=True)
class StartupSamples:
    seconds: Mapping[str, float]  # pod name -> create call to Running and ready
    pods: int
    failed: tuple[str, ...]  # pods that could not start, with the reason
    watch: WatchStats = field(default_factory=WatchStats)  # how often the pod watch was re-established


def _pod(name: str, image: str, labels: Mapping[str, str]) -> Any:  # a plain mapping: the client sends it as given
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "pause",
                    "image": image,
                    "command": ["sleep", "3600"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }


def _list_version(listed: client.V1PodList) -> str | None:
    """Where a watch resumes after this list (None: from now, when the server sent no list metadata)."""
    return listed.metadata.resource_version if listed.metadata else None


def _started(pod: client.V1Pod) -> bool:
    statuses = container_statuses(pod)
    return pod_status(pod).phase == "Running" and bool(statuses) and all(s.ready for s in statuses)


def pod_startup(
    cluster: ClusterHandle, namespace: str, *, pods: int, image: str, labels: Mapping[str, str], timeout_s: float
) -> StartupSamples:
    """Create ``pods`` pods one after another and time each from its create call to Running+ready (watched)."""
    if not 0 < pods <= MAX_PODS:
        raise WorkloadFailed(f"pod startup batch of {pods} pods is outside 1..{MAX_PODS}")
    core = client.CoreV1Api(cluster.api_client)
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    created: dict[str, float] = {}
    started: dict[str, float] = {}
    blocked: dict[str, str] = {}
    lock = threading.Lock()
    done = threading.Event()
    stop = threading.Event()
    stats = WatchStats()
    failures: list[BaseException] = []
    events = resilient_watch(
        core.list_namespaced_pod,
        namespace,
        label_selector=selector,
        resource_version=_list_version(core.list_namespaced_pod(namespace, label_selector=selector)),
        stop=stop,
        deadline=time.monotonic() + timeout_s + 1,
        stats=stats,
    )

    def consume() -> None:
        try:
            for event in events:
                pod = event["object"]
                seen = time.monotonic()
                name = pod.metadata.name
                with lock:
                    if name not in started and _started(pod):
                        started[name] = seen
                    elif (reason := pod_blocker([pod])) and name not in blocked:
                        blocked[name] = reason
                    if len(started) + len(blocked) >= pods:
                        done.set()
                        stop.set()
        except Exception as exc:  # handed to the caller's thread, which raises it
            failures.append(exc)
            done.set()

    reader = threading.Thread(target=consume, name="pod-startup-watch", daemon=True)
    reader.start()
    try:
        for i in range(pods):
            name = f"startup-{i:04d}"
            before = time.monotonic()
            core.create_namespaced_pod(namespace, _pod(name, image, labels))
            with lock:
                created[name] = before
        if not done.wait(timeout_s) or failures:
            if failures:
                raise failures[0]
            with lock:
                waiting = sorted(set(created) - set(started) - set(blocked))
            raise WaitTimeout(
                f"timed out after {timeout_s:g}s waiting for {pods} pods to start; "
                f"{len(waiting)} not running yet (first: {', '.join(waiting[:3])})"
            )
    finally:
        stop.set()
        reader.join(timeout=5)
    with lock:
        seconds = {n: started[n] - created[n] for n in sorted(started) if n in created}
        failed = tuple(f"{n}: {r}" for n, r in sorted(blocked.items()))
    return StartupSamples(seconds=seconds, pods=pods, failed=failed, watch=stats)


_PULLED = re.compile(r"Successfully pulled image \"[^\"]+\" in ((?:\d+(?:\.\d+)?(?:ms|us|µs|ns|h|m|s))+)")
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration_seconds(text: str) -> float:
    """A Go ``time.Duration`` string (``1m2.5s``, ``823.4ms``) in seconds."""
    return sum(float(value) * _SECONDS[unit] for value, unit in _GO_DURATION.findall(text))


def image_pull_seconds(cluster: ClusterHandle, namespace: str) -> dict[str, float]:
    """Per pod, how long the kubelet says it spent pulling images (its ``Pulled`` events), to separate image pulls
    from startup latency as the upstream SLO does. Pods whose image was already present have no entry."""
    pulls: dict[str, float] = {}
    for event in client.CoreV1Api(cluster.api_client).list_namespaced_event(namespace).items:
        if (
            event.reason == "Pulled"
            and event.involved_object.kind == "Pod"
            and (match := _PULLED.search(event.message or ""))
        ):
            name = event.involved_object.name or ""
            pulls[name] = pulls.get(name, 0.0) + go_duration_seconds(match.group(1))
    return pulls


VERBS: tuple[str, ...] = ("create", "get", "patch", "list", "delete")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiCall:
    """One API verb in the form pytest-benchmark's ``pedantic`` takes: ``setup()`` (untimed) returns the call's
    ``(args, kwargs)``, ``call`` is what is timed. Every object is a small labelled ConfigMap in ``namespace``."""

    verb: str
    setup: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]
    call: Callable[..., object]


@dataclass(slots=True)
class FirstTries:
    """An API call wrapped so that each timed round says whether the client had to retry it (429 or 5xx, see
    :mod:`harness.cluster.retry`). A retried round's time is mostly the server's ``Retry-After`` or the back-off,
    not the server's latency for one request, which is what the upstream SLO is about: such rounds are left out
    of the samples and counted instead."""

    call: Callable[..., Any]
    counter: Any  # a RetryCounter: its ``total`` grows with every retry
    retried: list[bool] = field(default_factory=list)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        before = self.counter.total
        try:
            return self.call(*args, **kwargs)
        finally:
            self.retried.append(self.counter.total != before)

    def split(self, seconds: Sequence[float], *, warmup: int) -> tuple[list[float], int]:
        """The timed rounds' ``seconds`` (in round order, after ``warmup`` untimed rounds) that needed no retry,
        and how many did."""
        flags = self.retried[warmup:]
        kept = [value for value, retried in zip(seconds, flags, strict=True) if not retried]
        return kept, len(seconds) - len(kept)


def api_calls(cluster: ClusterHandle, namespace: str, *, labels: Mapping[str, str]) -> dict[str, ApiCall]:
    """Mutating (create, patch, delete) and read (get, list) calls, each round on its own object so that no
    round waits on the previous one's side effects; objects left over go with the namespace."""
    core = client.CoreV1Api(cluster.api_client)
    names = itertools.count()
    selector = ",".join(labels) or "aibench.io/run-id"

    def body(name: str) -> Any:  # a plain mapping: the client sends it as given
        return {"metadata": {"name": name, "labels": dict(labels)}, "data": {"payload": "x" * 256}}

    def fresh() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (f"latency-{next(names):05d}",), {}

    def existing() -> tuple[tuple[Any, ...], dict[str, Any]]:
        (name,), _ = fresh()
        core.create_namespaced_config_map(namespace, body(name))
        return (name,), {}

    return {
        "create": ApiCall(
            verb="create", setup=fresh, call=lambda name: core.create_namespaced_config_map(namespace, body(name))
        ),
        "get": ApiCall(verb="get", setup=existing, call=lambda name: core.read_namespaced_config_map(name, namespace)),
        "patch": ApiCall(
            verb="patch",
            setup=existing,
            call=lambda name: core.patch_namespaced_config_map(name, namespace, {"data": {"patched": "1"}}),
        ),
        "list": ApiCall(
            verb="list",
            setup=lambda: ((), {}),
            call=lambda: core.list_namespaced_config_map(namespace, label_selector=selector, limit=50),
        ),
        "delete": ApiCall(
            verb="delete", setup=existing, call=lambda name: core.delete_namespaced_config_map(name, namespace)
        ),
    }
