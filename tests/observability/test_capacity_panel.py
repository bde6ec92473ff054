"""Capacity panel arithmetic: requests as the scheduler counts them, pools, fragmentation, bottlenecks."""

from __future__ import annotations

from typing import Any

from harness.observability.capacity import (
    GPU,
    bottlenecks,
    fragmentation,
    idle_devices,
    node_capacities,
    pod_requests,
    pool_rows,
)


def node(name: str, pool: str | None, gpus: int = 0, cpu: str = "96", memory: str = "1Ti") -> dict[str, Any]:
    labels = {"cloud.google.com/gke-nodepool": pool} if pool else {}
    allocatable = {"cpu": cpu, "memory": memory, **({GPU: str(gpus)} if gpus else {})}
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": allocatable}}


def pod(node_name: str, *, gpus: int = 0, cpu: str = "1", phase: str = "Running") -> dict[str, Any]:
    limits = {GPU: str(gpus)} if gpus else {}
    return {
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}, "limits": limits}}],
        },
        "status": {"phase": phase},
    }


def test_requests_follow_the_scheduler_rules() -> None:
    spec = {
        "spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                {"resources": {"limits": {"cpu": "1", GPU: "2"}}},  # limit only: the request defaults to it
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "4"}}}],
            "overhead": {"cpu": "250m"},
        }
    }
    assert pod_requests(spec) == {"cpu": 4.25, "memory": 1024.0**3, GPU: 2.0}


def test_pool_rows_and_usage() -> None:
    nodes = [node("a-0", "gpu-a", gpus=8), node("a-1", "gpu-a", gpus=8), node("c-0", None)]
    pods = [pod("a-0", gpus=8, cpu="8"), pod("a-1", gpus=3), pod("a-1", gpus=4, phase="Succeeded"), pod("c-0")]
    used = {"a-0": {"cpu": 7.5}, "a-1": {"cpu": 0.5}}
    rows = pool_rows(node_capacities(nodes, pods, used))
    table = {(r.pool, r.resource): (r.nodes, r.allocatable, r.requested, r.used) for r in rows}
    assert table[("gpu-a", GPU)] == (2, 16.0, 11.0, None)  # finished pods hold nothing; no GPU usage measured
    assert table[("gpu-a", "cpu")] == (2, 192.0, 9.0, 8.0)
    assert table[("cpu", "cpu")] == (1, 96.0, 1.0, None)  # no pool label: named by kind, as the inventory does
    assert ("cpu", GPU) not in table


def test_fragmentation_and_idle_gpus() -> None:
    nodes = [node(f"n{i}", "p", gpus=8) for i in range(3)]
    pods = [pod("n0", gpus=5), pod("n1", gpus=6), pod("n2", gpus=8)]
    capacities = node_capacities(nodes, pods)
    assert idle_devices(capacities) == {"n0": 3, "n1": 2}
    by_size = {f.size: (f.free, f.fits, f.stranded) for f in fragmentation(capacities)}
    assert by_size == {1: (5, 5, 0), 2: (5, 2, 1), 4: (5, 0, 5), 8: (5, 0, 5)}


def test_bottlenecks_name_the_pool_and_share() -> None:
    rows = pool_rows(node_capacities([node("n0", "p", gpus=8)], [pod("n0", gpus=8)]))
    assert bottlenecks(rows) == ["pool p: nvidia.com/gpu 100% requested (8 of 8)"]
