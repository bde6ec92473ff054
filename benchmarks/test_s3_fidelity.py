"""Fidelity of the s3-model-store workload: the suite measures the store, not itself.

On the embedded target (``cluster up`` in its own process, this machine as the node, moto's S3 server as the
``s3`` system service), the workload's multipart PUT and GET bandwidth are compared with a direct minio client loop
run from this process against the same Service address, with the same object size, count, part size and
concurrency. Runs alternate (workload, direct, workload, direct, ...) so drift in the machine's load hits both
sides alike; the medians of RUNS each must agree within +-10 %. The ratios land in ``extra_info``.

The direct loop is written independently of the workload's script (random bytes held in memory, one minio client,
a thread pool, bodies drained in 1 MiB chunks): only the S3 calls are shared, which is the point of the check.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import os
import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
import urllib3
from kubernetes import client
from minio import Minio
from support import ServerProcess, new_namespace

from harness.catalog.render import render
from harness.catalog.spec import catalog_root, load_spec
from harness.cluster.namespaces import run_labels
from harness.cluster.target import Connection
from harness.parsers.sentinel import parse_sentinel
from harness.runners.registry import run_workload
from harness.runners.skeleton import RunContext, scripts_configmap_name

RUNS = 3
TOLERANCE = 0.10
MIB = 1024 * 1024
OBJECT_SIZE_MIB = 32
OBJECTS = 8
PART_SIZE_MIB = 8
CONCURRENCY = 4
SECRET = "s3-creds"


def _s3_endpoint(core: client.CoreV1Api) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            endpoints = core.read_namespaced_endpoints("s3", "kube-system")
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            pytest.skip("the embedded target offers no s3 service (install moto[server] into .venv-tools)")
        if any(subset.addresses for subset in endpoints.subsets or []):
            service = core.read_namespaced_service("s3", "kube-system")
            return f"{service.spec.cluster_ip}:{service.spec.ports[0].port}"
        time.sleep(0.2)
    raise AssertionError("the embedded s3 service has no ready endpoint after 60 s")


def _workload_run(api: client.ApiClient, namespace: str, endpoint: str, index: int) -> dict[str, float]:
    spec = load_spec(catalog_root() / "s3-model-store" / "workload.yaml")
    params = {
        "endpoint": endpoint,
        "bucket": "fidelity-workload",
        "secret_name": SECRET,
        "object_size_mib": OBJECT_SIZE_MIB,
        "objects": OBJECTS,
        "part_size_mib": PART_SIZE_MIB,
        "concurrency": CONCURRENCY,
        "small_objects": 10,
    }
    context = {"scripts_configmap": scripts_configmap_name(spec.name), "run_id": f"fidelity-{index}"}
    rendered = render(spec, params, context=context)
    where = RunContext(
        cluster=Connection(api), namespace=namespace, labels=run_labels("s3-fidelity", f"run-{index}"), timeout_s=300
    )
    result = run_workload(spec, rendered, where)
    parsed = parse_sentinel(result.log_of("s3bench"))
    client.BatchV1Api(api).delete_namespaced_job("s3-model-store", namespace, propagation_policy="Foreground")
    _wait_gone(api, namespace)
    return {m.labels["direction"]: m.value for m in parsed.measurements if m.metric == "bw"}


def _wait_gone(api: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api)
    deadline = time.monotonic() + 60
    while batch.list_namespaced_job(namespace).items and time.monotonic() < deadline:
        time.sleep(0.1)
    core = client.CoreV1Api(api)
    core.delete_namespaced_config_map(scripts_configmap_name("s3-model-store"), namespace)


def _direct_run(endpoint: str, keys: dict[str, str], payloads: list[bytes], index: int) -> dict[str, float]:
    """PUT then GET the same objects with a plain minio loop from this process; bandwidth in MiB/s."""
    pool = urllib3.PoolManager(maxsize=CONCURRENCY + 2, retries=urllib3.Retry(total=2, backoff_factor=0.2))
    s3 = Minio(endpoint, access_key=keys["accessKey"], secret_key=keys["secretKey"], secure=False, http_client=pool)
    bucket = "fidelity-direct"
    if not s3.bucket_exists(bucket):
        s3.make_bucket(bucket)
    names = [f"direct-{index}/object-{i:04d}.bin" for i in range(len(payloads))]
    total_mib = sum(len(p) for p in payloads) / MIB

    def put(name: str, data: bytes) -> Callable[[], Any]:
        return lambda: s3.put_object(
            bucket, name, io.BytesIO(data), len(data), part_size=PART_SIZE_MIB * MIB, num_parallel_uploads=1
        )

    def get(name: str) -> Callable[[], int]:
        def read() -> int:
            response = s3.get_object(bucket, name)
            try:
                return sum(len(chunk) for chunk in response.stream(MIB))
            finally:
                response.close()
                response.release_conn()

        return read

    def timed(tasks: list[Callable[[], Any]]) -> float:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENCY) as executor:
            for future in [executor.submit(task) for task in tasks]:
                future.result()
        return time.perf_counter() - started

    put_s = timed([put(n, p) for n, p in zip(names, payloads, strict=True)])
    get_s = timed([get(n) for n in names])
    for name in names:
        s3.remove_object(bucket, name)
    return {"write": total_mib / put_s, "read": total_mib / get_s}


def test_s3_workload_throughput_matches_a_direct_client_loop(
    benchmark: Any, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(None)
    api = server.api_client()
    core = client.CoreV1Api(api)
    endpoint = _s3_endpoint(core)
    namespace = new_namespace(core, "s3-fidelity")
    keys = {"accessKey": "AKIA" + secrets.token_hex(8).upper(), "secretKey": secrets.token_urlsafe(30)}
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=SECRET),
            data={k: base64.b64encode(v.encode()).decode() for k, v in keys.items()},
        ),
    )
    payloads = [os.urandom(OBJECT_SIZE_MIB * MIB) for _ in range(OBJECTS)]
    samples: dict[str, list[dict[str, float]]] = {"workload": [], "direct": []}

    def alternate() -> None:
        for index in range(RUNS):
            samples["workload"].append(_workload_run(api, namespace, endpoint, index))
            samples["direct"].append(_direct_run(endpoint, keys, payloads, index))

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    medians = {
        side: {d: statistics.median(run[d] for run in runs) for d in ("write", "read")}
        for side, runs in samples.items()
    }
    ratios = {d: medians["workload"][d] / medians["direct"][d] for d in ("write", "read")}
    benchmark.extra_info.update(
        {
            "object_size_mib": OBJECT_SIZE_MIB,
            "objects": OBJECTS,
            "concurrency": CONCURRENCY,
            "runs_each": RUNS,
            "samples_mib_s": {s: [{d: round(v, 1) for d, v in r.items()} for r in runs] for s, runs in samples.items()},
            "median_mib_s": {s: {d: round(v, 1) for d, v in m.items()} for s, m in medians.items()},
            "ratio_workload_over_direct": {d: round(r, 3) for d, r in ratios.items()},
        }
    )
    print(f"\nS3 fidelity: medians {benchmark.extra_info['median_mib_s']}, ratios {ratios}")
    for direction, ratio in ratios.items():
        op = "PUT" if direction == "write" else "GET"
        assert abs(ratio - 1) <= TOLERANCE, (
            f"{op}: workload median {medians['workload'][direction]:.1f} MiB/s vs direct loop "
            f"{medians['direct'][direction]:.1f} MiB/s (ratio {ratio:.3f}, allowed 1 +- {TOLERANCE}); "
            f"samples {samples}"
        )
