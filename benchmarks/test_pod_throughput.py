"""Sequential pod create/delete throughput from one official client, and deletes staying flat as objects grow.

Emulated nodes only (no host node), so no container processes start: the numbers are the API server, scheduler
and scripted kubelet (two status writes per pod) in one process, against one client in another.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from kubernetes import client
from support import ServerProcess, emulated_spec, new_namespace, pod_body, wait_for_pods

N_PODS = 1000
MIN_CREATES_PER_S = 400.0
MIN_DELETES_PER_S = 400.0
FLAT_SMALL, FLAT_LARGE, FLAT_BATCH = 1000, 5000, 500
FLAT_MAX_RATIO = 1.5
FLAT_REPEATS = 3
RATE_ROUNDS = 3  # best of: the 2 cores are shared with whatever else runs


def _create(core: client.CoreV1Api, namespace: str, names: list[str]) -> float:
    start = time.perf_counter()
    for name in names:
        core.create_namespaced_pod(namespace, pod_body(name))
    return time.perf_counter() - start


def _delete(core: client.CoreV1Api, namespace: str, names: list[str]) -> float:
    start = time.perf_counter()
    for name in names:
        core.delete_namespaced_pod(name, namespace)
    return time.perf_counter() - start


def test_pod_create_delete_rate(benchmark, start_server: Callable[..., ServerProcess]) -> None:
    """1000 sequential creates then 1000 sequential deletes: each >= 400/s (best of RATE_ROUNDS rounds)."""
    server = start_server(emulated_spec(pools={"cpu": 10}))
    core = client.CoreV1Api(server.api_client())
    namespace = new_namespace(core, "bench-throughput")
    core.create_namespaced_pod(namespace, pod_body("warmup"))  # connection and first-request costs
    core.delete_namespaced_pod("warmup", namespace)
    rounds: list[dict[str, float]] = []

    def run() -> None:
        names = [f"p{len(rounds)}-{i:05d}" for i in range(N_PODS)]
        cpu0, server_cpu0 = time.process_time(), server.cpu_seconds()
        create_s = _create(core, namespace, names)
        cpu1, server_cpu1 = time.process_time(), server.cpu_seconds()
        wait_for_pods(core, namespace, N_PODS)  # scheduler + kubelet caught up, so deletes are measured alone
        cpu2, server_cpu2 = time.process_time(), server.cpu_seconds()
        delete_s = _delete(core, namespace, names)
        cpu3, server_cpu3 = time.process_time(), server.cpu_seconds()
        rounds.append(
            {
                "creates_per_s": N_PODS / create_s,
                "deletes_per_s": N_PODS / delete_s,
                "create_client_cpu_s": cpu1 - cpu0,
                "create_server_cpu_s": server_cpu1 - server_cpu0,
                "delete_client_cpu_s": cpu3 - cpu2,
                "delete_server_cpu_s": server_cpu3 - server_cpu2,
            }
        )

    benchmark.pedantic(run, rounds=RATE_ROUNDS, iterations=1)
    creates_per_s = max(r["creates_per_s"] for r in rounds)
    deletes_per_s = max(r["deletes_per_s"] for r in rounds)
    benchmark.extra_info.update(
        pods=N_PODS,
        creates_per_s=round(creates_per_s, 1),
        deletes_per_s=round(deletes_per_s, 1),
        rounds=[{k: round(v, 3) for k, v in r.items()} for r in rounds],
    )
    assert creates_per_s >= MIN_CREATES_PER_S, f"{creates_per_s:.0f} creates/s < {MIN_CREATES_PER_S:.0f}"
    assert deletes_per_s >= MIN_DELETES_PER_S, f"{deletes_per_s:.0f} deletes/s < {MIN_DELETES_PER_S:.0f}"


@pytest.mark.timeout(600)
def test_delete_time_flat_in_object_count(benchmark, start_server: Callable[..., ServerProcess]) -> None:
    """Per-delete time with 5000 pods in the namespace is at most 1.5x that with 1000 (deletes never scan).

    For each population P, the namespace holds P pods, FLAT_BATCH more are created and then deleted one by one
    (timed), so P pods exist throughout the timed batch. Best of FLAT_REPEATS batches, because the machine is noisy.
    """
    server = start_server(emulated_spec(pools={"cpu": 60}))
    core = client.CoreV1Api(server.api_client())
    namespace = new_namespace(core, "bench-flat")
    per_delete_s: dict[int, float] = {}
    per_create_s: dict[int, float] = {}
    server_cpu_per_delete_s: dict[int, float] = {}
    existing = 0

    def run() -> None:
        nonlocal existing
        for population in (FLAT_SMALL, FLAT_LARGE):
            filler = [f"bg-{i:05d}" for i in range(existing, population)]
            _create(core, namespace, filler)
            existing = population
            wait_for_pods(core, namespace, population, timeout_s=300)
            best_delete = best_create = best_cpu = float("inf")
            for repeat in range(FLAT_REPEATS):
                batch = [f"probe-{population}-{repeat}-{i:04d}" for i in range(FLAT_BATCH)]
                best_create = min(best_create, _create(core, namespace, batch) / FLAT_BATCH)
                wait_for_pods(core, namespace, population + FLAT_BATCH, timeout_s=300)
                cpu0 = server.cpu_seconds()
                best_delete = min(best_delete, _delete(core, namespace, batch) / FLAT_BATCH)
                best_cpu = min(best_cpu, (server.cpu_seconds() - cpu0) / FLAT_BATCH)
            per_delete_s[population], per_create_s[population] = best_delete, best_create
            server_cpu_per_delete_s[population] = best_cpu

    benchmark.pedantic(run, rounds=1, iterations=1)
    ratio = per_delete_s[FLAT_LARGE] / per_delete_s[FLAT_SMALL]
    benchmark.extra_info.update(
        batch=FLAT_BATCH,
        **{f"delete_ms_at_{p}": round(v * 1000, 3) for p, v in per_delete_s.items()},
        **{f"create_ms_at_{p}": round(v * 1000, 3) for p, v in per_create_s.items()},
        **{f"server_cpu_ms_per_delete_at_{p}": round(v * 1000, 3) for p, v in server_cpu_per_delete_s.items()},
        delete_ratio=round(ratio, 3),
        max_ratio=FLAT_MAX_RATIO,
    )
    assert ratio <= FLAT_MAX_RATIO, (
        f"per-delete time grows with object count: {per_delete_s[FLAT_LARGE] * 1000:.2f} ms at {FLAT_LARGE} pods vs "
        f"{per_delete_s[FLAT_SMALL] * 1000:.2f} ms at {FLAT_SMALL} (ratio {ratio:.2f} > {FLAT_MAX_RATIO})"
    )
