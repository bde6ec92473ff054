"""The real control plane (harness/localkube): how long a warm start takes, and pod creates/s through the official
client against the real kube-apiserver beside the embedded target, same machine, same run.

Warm means the programs are built (``bash deploy/local-kube/build.sh``); the start still makes fresh PKI, a fresh
etcd, applies 45 CRDs and waits for every operator's readiness and every kwok node's Ready condition. Skips, naming
the build command, when the programs are not built.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client, config
from support import ServerProcess, emulated_spec, new_namespace, pod_body

from harness.errors import ConfigError
from harness.localkube.assets import find_assets
from harness.localkube.controlplane import LocalKube, LocalKubeOptions

READY_BUDGET_S = 30.0
N_PODS = 300
RATE_ROUNDS = 2


@pytest.fixture
def built() -> None:
    try:
        find_assets()
    except ConfigError as exc:
        pytest.skip(str(exc))


def _creates_per_s(core: client.CoreV1Api, namespace: str, prefix: str) -> float:
    start = time.perf_counter()
    for i in range(N_PODS):
        core.create_namespaced_pod(namespace, pod_body(f"{prefix}-{i:04d}"))
    return N_PODS / (time.perf_counter() - start)


def test_warm_start_is_ready_within_budget(benchmark, built: None, tmp_path: Path) -> None:
    """etcd, kube-apiserver, controller-manager, scheduler, operators, CRDs established, kwok nodes Ready: <= 30 s."""
    marks: list[dict[str, float]] = []

    def start_stop() -> None:
        cluster = LocalKube(LocalKubeOptions(state_dir=tmp_path / f"lk-{len(marks)}"))
        try:
            cluster.start()
            marks.append(dict(cluster.timings.marks))
        finally:
            cluster.stop()

    benchmark.pedantic(start_stop, rounds=1, iterations=1)
    ready_s = marks[0]["ready"]
    benchmark.extra_info.update(marks=marks[0])
    assert ready_s <= READY_BUDGET_S, (
        f"real control plane ready in {ready_s:.1f} s > {READY_BUDGET_S:.0f} s: {marks[0]}"
    )


def test_pod_creates_real_apiserver_vs_embedded(
    benchmark, built: None, tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    """Sequential pod creates from one official client, the two control planes in the same run: the ratio is the
    number (the machine is shared); both must be positive and the real one must not be 10x slower."""
    embedded = start_server(emulated_spec(pools={"cpu": 4}))
    embedded_core = client.CoreV1Api(embedded.api_client())
    embedded_ns = new_namespace(embedded_core, "bench-create-embedded")
    rates: dict[str, list[float]] = {"embedded": [], "real": []}
    with LocalKube(LocalKubeOptions(state_dir=tmp_path / "lk", operators=())) as cluster:
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))
        real_core = client.CoreV1Api(api)
        real_ns = new_namespace(real_core, "bench-create-real")
        deadline = time.monotonic() + 30  # the ServiceAccount admission plugin needs the controller's "default" SA
        while not real_core.list_namespaced_service_account(real_ns).items and time.monotonic() < deadline:
            time.sleep(0.1)

        def run() -> None:
            n = len(rates["real"])
            rates["embedded"].append(_creates_per_s(embedded_core, embedded_ns, f"e{n}"))
            rates["real"].append(_creates_per_s(real_core, real_ns, f"r{n}"))

        benchmark.pedantic(run, rounds=RATE_ROUNDS, iterations=1)
        api.close()
    best = {k: max(v) for k, v in rates.items()}
    ratio = best["embedded"] / best["real"]
    benchmark.extra_info.update(
        pods=N_PODS, embedded_creates_per_s=round(best["embedded"], 1), real_creates_per_s=round(best["real"], 1),
        embedded_over_real=round(ratio, 2),
    )  # fmt: skip
    assert best["real"] > 0 and best["embedded"] > 0
    assert ratio < 10.0, f"real kube-apiserver {best['real']:.0f}/s vs embedded {best['embedded']:.0f}/s"
