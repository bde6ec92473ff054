"""Heterogeneous placement: the inventory of CPU/GPU/TPU node pools, CPU pods kept on CPU nodes, accelerator
pools reserved by taints and reachable with the right tolerations and selectors, and each GPU node's health as the
cluster already reports it. Read-only toward nodes: nothing here cordons, taints or labels a node."""

from __future__ import annotations

import json

import pytest

from harness.fixture_types import Capabilities, RunWorkload, Target, TestRecord
from harness.measurement import Measurement
from harness.probes.accelerators import (
    NodePool,
    accelerator_kind,
    gpu_health,
    mig_resources,
    node_pools,
    placement_for,
)

pytestmark = [pytest.mark.compute, pytest.mark.practices]


def test_node_pool_inventory(capabilities: Capabilities, record: TestRecord) -> None:
    """Every node belongs to one CPU, GPU or TPU pool; the pools, their accelerators, sizes and taints are recorded
    for the report, and every accelerator pool names its accelerator (a product or TPU type label)."""
    pools = node_pools(capabilities)
    emulated = any(n.emulated for n in capabilities.nodes)
    record.add(
        params={"pools": json.dumps([p.to_dict() for p in pools], sort_keys=True)},
        measurements=[
            Measurement(
                metric="pool_nodes",
                value=len(pool.nodes),
                unit="count",
                labels={"pool": pool.name, "kind": pool.kind, "accelerator": pool.accelerator or "none"},
                emulated=pool.emulated > 0,
            )
            for pool in pools
        ]
        + [
            Measurement(
                metric="pool_devices_per_node",
                value=pool.devices_per_node,
                unit="count",
                labels={"pool": pool.name, "kind": pool.kind},
                emulated=emulated and pool.emulated > 0,
            )
            for pool in pools
            if pool.kind != "cpu"
        ],
    )
    placed = sorted(name for pool in pools for name in pool.nodes)
    assert placed == sorted(n.name for n in capabilities.nodes), "a node is missing from (or twice in) the pools"
    unnamed = [p.name for p in pools if p.kind != "cpu" and p.accelerator.startswith("unlabelled")]
    assert not unnamed, f"accelerator pools without an accelerator label: {', '.join(unnamed)}"


def test_cpu_pod_lands_on_a_cpu_node(capabilities: Capabilities, run_workload: RunWorkload, record: TestRecord) -> None:
    """A pod with no accelerator request and no tolerations lands on a CPU node, never on a GPU or TPU node."""
    cpu_nodes = [n for n in capabilities.nodes if accelerator_kind(n) == "cpu"]
    if not cpu_nodes:
        pytest.skip("the target has no CPU-only node: every node carries GPUs or TPUs")
    result = run_workload("trivial-job")
    ran_on = result.node_of("main")
    node = next((n for n in capabilities.nodes if n.name == ran_on), None)
    kind = accelerator_kind(node) if node else "unknown"
    record.add(
        measurements=[
            Measurement(
                metric="cpu_pod_on_cpu_node",
                value=1 if kind == "cpu" else 0,
                unit="count",
                labels={"node": ran_on, "kind": kind},
                emulated=result.emulated,
            )
        ]
    )
    assert kind == "cpu", f"a CPU-only pod landed on {ran_on}, a {kind} node (reserve accelerator pools with taints)"


def test_accelerator_pools_are_reserved(capabilities: Capabilities, record: TestRecord) -> None:
    """GPU and TPU pools carry a NoSchedule (or NoExecute) taint, so CPU-only pods cannot take their CPU and memory
    (GKE, EKS and AKS taint accelerator pools, e.g. nvidia.com/gpu=present:NoSchedule)."""
    all_pools = node_pools(capabilities)
    pools = [p for p in all_pools if p.kind != "cpu"]
    if not pools:
        pytest.skip("the target has no GPU or TPU node pool")
    if all(p.kind != "cpu" for p in all_pools):
        pytest.skip("the target has no CPU node pool: there is nowhere else for CPU-only pods, nothing to reserve")
    record.add(params={p.name: ", ".join(p.taints) or "untainted" for p in pools})
    open_pools = [f"{p.name} ({p.kind}: {p.accelerator})" for p in pools if not p.reserved]
    assert not open_pools, (
        f"accelerator pools without a NoSchedule taint: {', '.join(open_pools)}; CPU-only pods may be placed there "
        "(taint them, e.g. nvidia.com/gpu=present:NoSchedule or google.com/tpu=present:NoSchedule)"
    )


@pytest.mark.gpu
def test_pod_with_tolerations_reaches_each_gpu_pool(
    gpu_pool: NodePool | None, capabilities: Capabilities, run_workload: RunWorkload, record: TestRecord
) -> None:
    """A GPU pod with the pool's tolerations and a required node affinity on its accelerator label lands in that pool
    (asking for the resource the pool advertises: a whole GPU, or a MIG instance on MIG-partitioned pools)."""
    if gpu_pool is None:
        pytest.skip("no GPU node pool")
    node = next(n for n in capabilities.nodes if n.name == gpu_pool.nodes[0])
    placement = placement_for(node)
    resource = "nvidia.com/gpu" if node.gpus else sorted(mig_resources(node))[0]
    result = run_workload("gpu-device-probe", gpus="1", resource=resource, **placement.affinity_params())
    ran_on = result.node_of("probe")
    record.add(
        measurements=[
            Measurement(
                metric="pod_on_pool",
                value=1 if ran_on in gpu_pool.nodes else 0,
                unit="count",
                labels={"pool": gpu_pool.name, "node": ran_on, "resource": resource},
                emulated=result.emulated,
            )
        ]
    )
    assert ran_on in gpu_pool.nodes, (
        f"pod for pool {gpu_pool.name} (node affinity {dict(placement.node_selector)}) ran on {ran_on}"
    )


@pytest.mark.gpu
def test_gpu_node_health(target: Target, capabilities: Capabilities, record: TestRecord) -> None:
    """No GPU node is unhealthy by the signals the cluster already exposes: node conditions, device-plugin
    allocatable vs capacity, the GPU Operator's validator pod, and Autopilot's gpuhealth label (read-only)."""
    health = gpu_health(target, [n.name for n in capabilities.gpu_nodes])
    emulated = {n.name for n in capabilities.nodes if n.emulated}
    record.add(
        params={h.node: f"{h.status}: {'; '.join(h.reasons) or 'no problem reported'}" for h in health},
        measurements=[
            Measurement(
                metric="gpu_node_healthy",
                value=1 if h.status == "healthy" else 0,
                unit="count",
                labels={"node": h.node, "status": h.status, **{k: str(v) for k, v in h.signals.items()}},
                emulated=h.node in emulated,
            )
            for h in health
        ],
    )
    assert len(health) == len(capabilities.gpu_nodes), "some GPU nodes could not be read"
    unhealthy = [f"{h.node}: {'; '.join(h.reasons)}" for h in health if h.status == "unhealthy"]
    assert not unhealthy, "unhealthy GPU nodes: " + " | ".join(unhealthy)
