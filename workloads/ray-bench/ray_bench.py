"""Ray throughput benchmark: remote task and actor-call rates, and an all-reduce across actors.

Runs the same in two places:
- a single pod with Ray in local mode (``RAY_BENCH_MODE=local``): ``ray.init`` starts a private Ray instance bound to
  127.0.0.1 inside the pod (the embedded target, or any cluster without KubeRay);
- a KubeRay RayJob entrypoint (``RAY_BENCH_MODE=cluster``): ``ray.init(address="auto")`` joins the RayCluster the
  operator built, and actors spread over the worker pods.

The all-reduce is a ring (reduce-scatter, then all-gather) whose chunks travel between actors as Ray object
references, i.e. through Ray's object store and transfer service, with the nccl-tests bus-bandwidth convention
busbw = algbw * 2 (n - 1) / n. It is Ray's own data path, named as such, never a GPU collective. Every element of
the result is checked against the known sum; a mismatch is reported as ``wrong`` and fails the test.

Prints one ===AIBENCH-RESULT-BEGIN=== block (harness.parsers.sentinel).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import ray


def env_int(name: str, low: int, high: int) -> int:
    value = int(os.environ[name])
    if not low <= value <= high:
        raise SystemExit(f"{name}={value} must be within {low}..{high}")
    return value


@ray.remote
def noop() -> int:
    return 0


@ray.remote
class Counter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self) -> int:
        self.count += 1
        return self.count


@ray.remote
class RingMember:
    """Holds one rank's vector, split into ``world`` chunks; the driver moves chunks around the ring."""

    def __init__(self, rank: int, world: int, elements: int) -> None:
        self.rank, self.world = rank, world
        self.data = np.full(elements, float(rank + 1), dtype=np.float32)
        self.bounds = np.linspace(0, elements, world + 1).astype(int)

    def reset(self) -> None:
        self.data[:] = float(self.rank + 1)

    def chunk(self, index: int) -> np.ndarray:
        lo, hi = self.bounds[index], self.bounds[index + 1]
        return self.data[lo:hi].copy()

    def add(self, index: int, incoming: np.ndarray) -> None:
        lo, hi = self.bounds[index], self.bounds[index + 1]
        self.data[lo:hi] += incoming

    def put(self, index: int, incoming: np.ndarray) -> None:
        lo, hi = self.bounds[index], self.bounds[index + 1]
        self.data[lo:hi] = incoming

    def wrong(self, expected: float) -> int:
        return int(np.count_nonzero(self.data != expected))


def ring_allreduce(members: list, world: int) -> None:
    """2 (world - 1) steps; in each, every rank sends one chunk to its right neighbour (all in parallel)."""
    for step in range(world - 1):  # reduce-scatter
        refs = [members[r].chunk.remote((r - step) % world) for r in range(world)]
        ray.get([members[(r + 1) % world].add.remote((r - step) % world, refs[r]) for r in range(world)])
    for step in range(world - 1):  # all-gather
        refs = [members[r].chunk.remote((r + 1 - step) % world) for r in range(world)]
        ray.get([members[(r + 1) % world].put.remote((r + 1 - step) % world, refs[r]) for r in range(world)])


def main() -> int:
    mode = os.environ.get("RAY_BENCH_MODE", "local")
    tasks = env_int("TASKS", 1, 1_000_000)
    actor_calls = env_int("ACTOR_CALLS", 1, 1_000_000)
    world = env_int("RING_ACTORS", 2, 256)
    size = env_int("ALLREDUCE_BYTES", 4096, 1 << 31)
    rounds = env_int("ALLREDUCE_ROUNDS", 1, 1000)
    if mode == "local":
        ray.init(num_cpus=env_int("RAY_NUM_CPUS", 1, 512), include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address="auto", log_to_driver=False)
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    ray.get([noop.remote() for _ in range(world * 2)])  # start the workers before timing

    started = time.perf_counter()
    ray.get([noop.remote() for _ in range(tasks)])
    task_rate = tasks / (time.perf_counter() - started)

    counters = [Counter.remote() for _ in range(world)]
    ray.get([c.inc.remote() for c in counters])
    started = time.perf_counter()
    ray.get([counters[i % world].inc.remote() for i in range(actor_calls)])
    call_rate = actor_calls / (time.perf_counter() - started)

    elements = size // 4
    members = [RingMember.options(scheduling_strategy="SPREAD").remote(r, world, elements) for r in range(world)]
    ray.get([m.reset.remote() for m in members])
    ring_allreduce(members, world)  # warm-up round, also the correctness check
    expected = world * (world + 1) / 2
    wrong = sum(ray.get([m.wrong.remote(expected) for m in members]))
    times = []
    for _ in range(rounds):
        ray.get([m.reset.remote() for m in members])
        started = time.perf_counter()
        ring_allreduce(members, world)
        times.append(time.perf_counter() - started)
    best = min(times)
    algbw = elements * 4 / best / 1e9
    busbw = algbw * 2 * (world - 1) / world
    labels = {"mode": mode, "actors": str(world), "size": str(elements * 4), "transport": "ray-object-store"}
    result = {
        "measurements": [
            {"metric": "task_rate", "value": task_rate, "unit": "calls/s", "labels": {"mode": mode}},
            {"metric": "actor_call_rate", "value": call_rate, "unit": "calls/s", "labels": {"mode": mode}},
            {"metric": "allreduce_time", "value": best * 1000, "unit": "ms", "labels": labels},
            {"metric": "algbw", "value": algbw, "unit": "GB/s", "labels": labels},
            {"metric": "busbw", "value": busbw, "unit": "GB/s", "labels": labels},
            {"metric": "wrong", "value": wrong, "unit": "count", "labels": labels},
        ],
        "info": {"ray_version": ray.__version__, "alive_nodes": nodes, "tasks": tasks, "actor_calls": actor_calls},
    }
    ray.shutdown()
    print("===AIBENCH-RESULT-BEGIN===")
    print(json.dumps(result))
    print("===AIBENCH-RESULT-END===")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
