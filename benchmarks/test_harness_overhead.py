"""Harness overhead for a trivial workload on the embedded target (issue 3 targets).

One iteration is the whole loop a suite test drives: per-test namespace, render, apply (ConfigMap + Job), wait for
completion, read logs, parse the result block, delete the namespace and wait for it to go. The API server runs
in its own process, so this process's CPU time is the harness's (client side) alone.

Targets: median wall time per loop <= 150 ms; the loop's own CPU <= 2x the CPU its API calls cost. An API call's
cost is the client CPU spent inside ``ApiClient.call_api`` (request, TLS, response decoding into models), measured
per call by wrapping it; everything else the loop spends (rendering, evidence, parsing, waiting logic) must stay
within the same amount again.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from kubernetes import client

from harness.catalog.render import render
from harness.catalog.spec import load_spec
from harness.cluster.manifests import Applier
from harness.cluster.namespaces import run_labels, scoped_namespace
from harness.cluster.target import Connection
from harness.parsers.sentinel import parse_sentinel
from harness.runners.registry import run_workload
from harness.runners.skeleton import RunContext

SPEC = Path(__file__).resolve().parents[1] / "tests" / "data" / "workloads" / "echo-shell" / "workload.yaml"
LOOPS = 15


class _Meter:
    """Counts API calls and the client CPU they cost: the outermost of a generated API method (parameter
    validation, request, TLS, response decoding into models) or a raw ``call_api`` (the dynamic client)."""

    API_CLASSES = (client.CoreV1Api, client.BatchV1Api, client.AppsV1Api, client.CustomObjectsApi)

    def __init__(self, api_client: client.ApiClient) -> None:
        self.calls = 0
        self.cpu = 0.0
        self._depth = 0
        self._restore: list[tuple[object, str, object]] = []
        api_client.call_api = self._wrap(api_client.call_api)  # type: ignore[method-assign]
        for cls in self.API_CLASSES:
            for name, fn in list(vars(cls).items()):
                if callable(fn) and not name.startswith("_"):
                    self._restore.append((cls, name, fn))
                    setattr(cls, name, self._wrap(fn))

    def _wrap(self, fn):
        def metered(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                self.calls += 1
                self.cpu += time.thread_time() - start

        return metered

    def close(self) -> None:
        for cls, name, fn in self._restore:
            setattr(cls, name, fn)


def test_trivial_workload_loop(benchmark, start_server) -> None:
    server = start_server(None)
    api = server.api_client()
    spec = load_spec(SPEC)
    counter = _Meter(api)
    cluster = Connection(api, Applier(api))  # the session's applier: discovery once per run, as the plugin does

    walls: list[float] = []
    cpus: list[float] = []
    api_cpus: list[float] = []
    calls: list[int] = []

    def loop(i: int) -> None:
        c0, w0, n0, a0 = time.thread_time(), time.perf_counter(), counter.calls, counter.cpu
        with scoped_namespace(api, run_id="bench", test=f"bench::loop{i}") as ns:
            rendered = render(spec, {"value": "1"}, context={})
            context = RunContext(cluster=cluster, namespace=ns, labels=run_labels("bench", f"loop{i}"), timeout_s=30)
            result = run_workload(spec, rendered, context)
            assert parse_sentinel(result.log_of("main")).measurements[0].value == 1.0
        walls.append(time.perf_counter() - w0)
        cpus.append(time.thread_time() - c0)
        api_cpus.append(counter.cpu - a0)
        calls.append(counter.calls - n0)

    try:
        loop(-1)  # warm-up: imports, discovery cache, first process launch
        walls.clear(), cpus.clear(), calls.clear(), api_cpus.clear()
        iteration = iter(range(LOOPS))
        benchmark.pedantic(lambda: loop(next(iteration)), rounds=LOOPS, iterations=1)
    finally:
        counter.close()

    median_wall_ms = statistics.median(walls) * 1000
    cpu_ratio = statistics.median(c / a for c, a in zip(cpus, api_cpus, strict=True))
    benchmark.extra_info.update(
        {
            "median_wall_ms": round(median_wall_ms, 1),
            "median_api_calls": statistics.median(calls),
            "median_api_cpu_ms": round(statistics.median(api_cpus) * 1000, 1),
            "median_loop_cpu_ms": round(statistics.median(cpus) * 1000, 1),
            "cpu_over_api_cost": round(cpu_ratio, 2),
        }
    )
    assert median_wall_ms <= 150, f"harness loop median {median_wall_ms:.0f} ms > 150 ms"
    assert cpu_ratio <= 2.0, f"loop CPU is {cpu_ratio:.2f}x its API calls' cost (> 2x)"
