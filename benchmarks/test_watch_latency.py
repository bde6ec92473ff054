"""Watch event latency: how long after a create a watcher of the same client process sees the ADDED event.

Method: one thread runs the official client's ``watch.Watch().stream(list_namespaced_pod, ...)`` from the
namespace's resourceVersion; the main thread creates N pods sequentially (emulated nodes, so each pod also gets a
bind and a kubelet status write: three events per pod reach the watcher). For each pod the latency is

    watch thread has the ADDED event (perf_counter, after the client built the event's model)
    - the create call was issued (perf_counter just before ``create_namespaced_pod``)

This is the asserted number. It is an upper bound: it includes the create's own round trip. Measuring from the
moment the create call *returned* is recorded too, but it is degenerate here: the server publishes the event
before it answers the create, so more than half of the events reach the watcher before the create call returns
(those count as 0; ``seen_before_return`` says how many). Both include the client's own cost of ~1 ms CPU per
event (pydantic models), under the GIL of one process that is also issuing the creates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kubernetes import client, watch
from support import ServerProcess, emulated_spec, new_namespace, pod_body, summary_ms

N_PODS = 1000
P50_MAX_MS = 5.0
P99_MAX_MS = 20.0
WATCH_TIMEOUT_S = 120
ROUNDS = 3  # best of: the 2 cores are shared with whatever else runs


def _one_round(core: client.CoreV1Api, namespace: str, prefix: str) -> tuple[list[float], list[float]]:
    """Create N_PODS pods with a watch running; latencies (s) from create issued and from create returned."""
    rv = core.list_namespaced_pod(namespace, _preload_content=False).json()["metadata"]["resourceVersion"]
    names = [f"{prefix}-{i:05d}" for i in range(N_PODS)]
    warmup = f"{prefix}-warmup"
    issued: dict[str, float] = {}
    returned: dict[str, float] = {}
    seen: dict[str, float] = {}
    all_seen = threading.Event()
    warm = threading.Event()
    watcher = watch.Watch()
    errors: list[BaseException] = []

    def watch_thread() -> None:
        try:
            for event in watcher.stream(
                core.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=WATCH_TIMEOUT_S
            ):
                if event["type"] != "ADDED":
                    continue
                name = event["object"].metadata.name
                if name == warmup:
                    warm.set()
                elif name.startswith(prefix):
                    seen[name] = time.perf_counter()
                    if len(seen) == N_PODS:
                        return
        except Exception as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            all_seen.set()
            warm.set()

    thread = threading.Thread(target=watch_thread, name="bench-watch", daemon=True)
    thread.start()
    try:
        core.create_namespaced_pod(namespace, pod_body(warmup))
        assert warm.wait(WATCH_TIMEOUT_S), "the watch never saw the warm-up pod"  # the stream is established
        for name in names:
            issued[name] = time.perf_counter()
            core.create_namespaced_pod(namespace, pod_body(name))
            returned[name] = time.perf_counter()
        assert all_seen.wait(WATCH_TIMEOUT_S), f"the watch saw {len(seen)} of {N_PODS} ADDED events"
    finally:
        watcher.stop()
        thread.join(timeout=WATCH_TIMEOUT_S + 5)
    assert not errors, f"watch failed: {errors[0]!r}"
    assert len(seen) == N_PODS
    return [seen[n] - issued[n] for n in names], [seen[n] - returned[n] for n in names]


def test_watch_added_latency(benchmark, start_server: Callable[..., ServerProcess]) -> None:
    """ADDED seen by a watch p50 <= 5 ms, p99 <= 20 ms after the create was issued, over 1000 sequential creates
    (best of ROUNDS rounds by p99, each in a fresh namespace)."""
    server = start_server(emulated_spec(pools={"cpu": 10 * ROUNDS}))
    core = client.CoreV1Api(server.api_client())
    results: list[tuple[list[float], list[float]]] = []

    def run() -> None:
        index = len(results)
        namespace = new_namespace(core, f"bench-watch-{index}")
        results.append(_one_round(core, namespace, f"w{index}"))

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    per_round = [(summary_ms(from_issue), from_issue, from_return) for from_issue, from_return in results]
    stats, _, from_return = min(per_round, key=lambda r: r[0]["p99_ms"])
    benchmark.extra_info.update(
        pods=N_PODS,
        latency_after_issue=stats,
        latency_after_return=summary_ms([max(0.0, d) for d in from_return]),
        seen_before_return=sum(1 for d in from_return if d < 0),
        rounds_p50_p99_ms=[(r[0]["p50_ms"], r[0]["p99_ms"]) for r in per_round],
    )
    assert stats["p50_ms"] <= P50_MAX_MS, f"watch latency p50 {stats['p50_ms']:.2f} ms > {P50_MAX_MS} ms"
    assert stats["p99_ms"] <= P99_MAX_MS, f"watch latency p99 {stats['p99_ms']:.2f} ms > {P99_MAX_MS} ms"
