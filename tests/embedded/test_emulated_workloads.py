"""The product's workload emulations: real formats the suite's parsers accept, for exactly the devices a pod got,
every number flagged emulated; selection by the workload label; a workload with no emulation fails at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eventually import eventually
from judging import transport
from kubernetes import client

from harness.collectives import largest_busbw, nccl_run
from harness.embedded.cluster import EmbeddedCluster
from harness.embedded.deviceplugin import DEVICES_ANNOTATION, GPU, EmulatedDevice, ScriptContext
from harness.embedded.emulated_workloads import (
    NO_EMULATION_REASON,
    WORKLOAD_LABEL,
    emulated_workloads,
    gpu_bench_log,
    nccl_tests_log,
    script_for,
)
from harness.parsers.cuda import cuda_measurements, parse_device_probe
from harness.parsers.nccl import parse_nccl_tests
from harness.thresholds.model import Status


def _context(gpus: int, product: str = "NVIDIA H100 80GB HBM3", **env: str) -> ScriptContext:
    devices = tuple(EmulatedDevice(resource=GPU, index=i, uuid=f"GPU-{i:08d}", name=product) for i in range(gpus))
    return ScriptContext(namespace="ns", pod="nccl-gpu-0-abcde", node="gpu-0", devices={"main": devices}, env=env)


def test_nccl_tests_table_for_the_pods_gpus_parses_with_nvlink_and_clears_nothing_it_should_not() -> None:
    text = nccl_tests_log(_context(8, MIN_BYTES="1M", MAX_BYTES="8G"))
    result = parse_nccl_tests(text, program="all_reduce_perf")
    assert result.nranks == 8 and result.rows[0].size == 1 << 20 and result.rows[-1].size == 8 << 30
    run = nccl_run(text, program="all_reduce_perf", emulated=True, scope="intra-node")
    assert run.measurements and all(m.emulated for m in run.measurements)
    assert transport(run.transports, scope="intra-node", rdma_available=False).status is Status.PASSED
    busbw = largest_busbw(run.measurements)
    assert busbw is not None and 400 < busbw <= 480  # the H100 plateau, approached at the largest size


def test_nccl_with_p2p_and_shm_disabled_goes_through_ib() -> None:
    text = nccl_tests_log(_context(4, NCCL_P2P_DISABLE="1", NCCL_SHM_DISABLE="1", MAX_BYTES="64M"))
    run = nccl_run(text, program="all_reduce_perf", emulated=True, scope="ib-loopback")
    assert transport(run.transports, scope="inter-node", rdma_available=True).status is Status.PASSED, run.transports


def test_gpu_bench_result_block_covers_each_gpu_and_flags_every_number() -> None:
    text = gpu_bench_log(_context(2, BENCH_MODE="gemm"))
    measurements = cuda_measurements(text, mode="gemm", expect_gpus=2, dtypes=("bf16", "fp16", "tf32", "fp32"))
    assert len(measurements) == 8 and all(m.emulated for m in measurements)
    a100 = cuda_measurements(
        gpu_bench_log(_context(1, "NVIDIA A100-SXM4-80GB", BENCH_MODE="membw")), mode="membw", expect_gpus=1
    )
    assert [m.value for m in a100] == [1750.0]  # figures follow the product


def test_selection_by_workload_label_with_app_name_fallback() -> None:
    table = emulated_workloads()
    assert script_for({WORKLOAD_LABEL: "cuda-membw"}, table) is table["cuda-membw"]
    assert script_for({"app.kubernetes.io/name": "tpu-jax"}, table) is table["tpu-jax"]
    assert script_for({"app": "web"}, table) is None  # not a workload: the node's default (Running)
    missing = script_for({WORKLOAD_LABEL: "ray-bench"}, table)
    assert missing is not None and missing.exit_code == 1 and missing.event is not None
    assert missing.event[0] == NO_EMULATION_REASON and "ray-bench has no emulated output" in missing.message


def _job(name: str, workload: str, gpus: int) -> dict[str, Any]:
    resources = {"limits": {GPU: str(gpus)}} if gpus else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {WORKLOAD_LABEL: workload}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {WORKLOAD_LABEL: workload}},
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
                    "nodeSelector": {"aibench.io/node-pool": "gpu" if gpus else "cpu"},
                    "containers": [{"name": "main", "image": "x", "command": ["true"], "resources": resources}],
                },
            },
        },
    }


def _finished_pod(core: client.CoreV1Api, ns: str, job: str) -> client.V1Pod | None:
    pods = core.list_namespaced_pod(ns, label_selector=f"job-name={job}").items
    return next((p for p in pods if p.status.phase in ("Succeeded", "Failed")), None)


def test_device_probe_lists_exactly_the_allocated_gpus(
    emulated_cluster: EmbeddedCluster, emulated_api: client.ApiClient, emulated_ns: str
) -> None:
    core, batch = client.CoreV1Api(emulated_api), client.BatchV1Api(emulated_api)
    batch.create_namespaced_job(emulated_ns, _job("probe", "gpu-device-probe", 3))
    pod = eventually(lambda: _finished_pod(core, emulated_ns, "probe"), timeout_s=20, what="the probe to finish")
    assert pod.status.phase == "Succeeded"
    allocated = json.loads(pod.metadata.annotations[DEVICES_ANNOTATION])["main"]
    probe = parse_device_probe(core.read_namespaced_pod_log(pod.metadata.name, emulated_ns))
    assert [g.uuid for g in probe.gpus] == allocated and len(allocated) == 3


def test_workload_without_emulation_fails_at_once_saying_so(
    emulated_cluster: EmbeddedCluster, emulated_api: client.ApiClient, emulated_ns: str
) -> None:
    core, batch = client.CoreV1Api(emulated_api), client.BatchV1Api(emulated_api)
    batch.create_namespaced_job(emulated_ns, _job("nothing", "no-such-emulation", 0))
    pod = eventually(lambda: _finished_pod(core, emulated_ns, "nothing"), timeout_s=20, what="the pod to fail")
    terminated = pod.status.container_statuses[0].state.terminated
    assert pod.status.phase == "Failed" and terminated.exit_code == 1
    assert "no-such-emulation has no emulated output" in terminated.message
    assert "has no emulated output" in core.read_namespaced_pod_log(pod.metadata.name, emulated_ns)
    events = core.list_namespaced_event(emulated_ns, field_selector=f"involvedObject.name={pod.metadata.name}")
    assert NO_EMULATION_REASON in {e.reason for e in events.items}


def test_every_placement_only_workload_has_an_emulation() -> None:
    """Placement-only workloads may run on emulated nodes (their workload.yaml says so): without an emulation
    their pods would fail there and be replaced, and the placement they exist to check would be lost."""
    import yaml as _yaml

    from harness.embedded.emulated_workloads import emulated_workloads as _table

    workloads = Path(__file__).resolve().parents[2] / "workloads"
    placement_only = sorted(
        p.parent.name for p in workloads.glob("*/workload.yaml") if _yaml.safe_load(p.read_text()).get("placement_only")
    )
    assert placement_only, "the catalog has placement-only workloads"
    assert [w for w in placement_only if w not in _table()] == []
