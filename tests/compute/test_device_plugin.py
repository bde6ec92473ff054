"""The emulated device plugin: distinct devices per container, time-slicing replicas, MIG instances, TPU chips,
the kubelet's admission error when devices run out, and nvidia-smi -L output the real parser reads."""

from __future__ import annotations

from typing import Any

import pytest

from harness.embedded.deviceplugin import AllocationError, EmulatedDevicePlugin, ScriptContext, device_resources
from harness.parsers.nvidia_smi import parse_gpu_list


def node(name: str, labels: dict[str, str], allocatable: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"cpu": "8", **allocatable}}}


def pod(uid: str, node_name: str, *containers: tuple[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "metadata": {"uid": uid, "name": f"p-{uid}", "namespace": "ns"},
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": name, "resources": {"limits": limits}} for name, limits in containers],
        },
    }


@pytest.fixture
def plugin() -> EmulatedDevicePlugin:
    plugin = EmulatedDevicePlugin()
    plugin.register(node("h100-0", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, {"nvidia.com/gpu": "4"}))
    plugin.register(
        node(
            "l4-0",
            {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.replicas": "2"},
            {"nvidia.com/gpu": "4"},
        )
    )
    plugin.register(node("mig-0", {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}, {"nvidia.com/mig-1g.5gb": "2"}))
    plugin.register(
        node("tpu-0", {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice"}, {"google.com/tpu": "4"})
    )
    return plugin


def test_containers_and_pods_get_distinct_gpus_until_released(plugin: EmulatedDevicePlugin):
    two_containers = pod("a", "h100-0", ("c1", {"nvidia.com/gpu": "2"}), ("c2", {"nvidia.com/gpu": "1"}))
    first = plugin.allocate(two_containers)
    second = plugin.allocate(pod("b", "h100-0", ("main", {"nvidia.com/gpu": "1"})))
    uuids = [d.uuid for ds in (*first.values(), *second.values()) for d in ds]
    assert len(uuids) == 4 and len(set(uuids)) == 4
    assert (
        plugin.allocate(pod("a", "h100-0", ("c1", {"nvidia.com/gpu": "2"}), ("c2", {"nvidia.com/gpu": "1"}))) == first
    )
    with pytest.raises(
        AllocationError,
        match=r"^Allocate failed due to requested number of devices unavailable for "
        r"nvidia.com/gpu. Requested: 1, Available: 0, which is unexpected$",
    ):
        plugin.allocate(pod("c", "h100-0", ("main", {"nvidia.com/gpu": "1"})))
    plugin.release("a")
    third = plugin.allocate(pod("c", "h100-0", ("main", {"nvidia.com/gpu": "3"})))
    assert {d.uuid for d in third["main"]} == {d.uuid for ds in first.values() for d in ds}
    assert EmulatedDevicePlugin.annotation(second).startswith('{"main":["GPU-')


def test_listing_is_nvidia_smi_format_reindexed_inside_the_container(plugin: EmulatedDevicePlugin):
    devices = plugin.allocate(pod("a", "h100-0", ("main", {"nvidia.com/gpu": "2"})))
    context = ScriptContext(namespace="ns", pod="p-a", node="h100-0", devices=devices)
    gpus = parse_gpu_list(context.nvidia_smi_list())
    assert [g.index for g in gpus] == [0, 1] and {g.name for g in gpus} == {"NVIDIA H100 80GB HBM3"}
    assert [g.uuid for g in gpus] == [d.uuid for d in devices["main"]]
    assert ScriptContext(namespace="ns", pod="p", node="h100-0").nvidia_smi_list() == ""


def test_time_slicing_hands_each_physical_gpu_out_replicas_times(plugin: EmulatedDevicePlugin):
    got = [plugin.allocate(pod(u, "l4-0", ("main", {"nvidia.com/gpu": "1"})))["main"][0] for u in "abcd"]
    assert len({d.uuid for d in got}) == 2  # 4 advertised = 2 GPUs x 2 replicas, spread first
    assert sorted(d.replica for d in got) == [0, 0, 1, 1]
    with pytest.raises(AllocationError):
        plugin.allocate(pod("e", "l4-0", ("main", {"nvidia.com/gpu": "1"})))


def test_mig_instances_are_listed_under_their_parent_gpu(plugin: EmulatedDevicePlugin):
    devices = plugin.allocate(pod("a", "mig-0", ("main", {"nvidia.com/mig-1g.5gb": "1"})))
    listing = ScriptContext(namespace="ns", pod="p", node="mig-0", devices=devices).nvidia_smi_list()
    (gpu,) = parse_gpu_list(listing)
    assert gpu.name == "NVIDIA A100 SXM4 40GB" and gpu.uuid.startswith("GPU-")
    assert [(m.profile, m.device) for m in gpu.mig_devices] == [("1g.5gb", 0)]
    assert "  MIG 1g.5gb      Device  0: (UUID: MIG-" in listing


def test_tpu_chips_are_accel_devices(plugin: EmulatedDevicePlugin):
    devices = plugin.allocate(pod("a", "tpu-0", ("jax", {"google.com/tpu": "4"})))
    assert [d.uuid for d in devices["jax"]] == ["/dev/accel0", "/dev/accel1", "/dev/accel2", "/dev/accel3"]
    assert {d.name for d in devices["jax"]} == {"tpu-v5-lite-podslice"}


def test_device_resources_ignores_cpu_memory_and_zero():
    assert device_resources(
        {"cpu": "2", "nvidia.com/gpu": "0", "google.com/tpu": "4", "cloud-tpus.google.com/v3": "8", "rdma/ib": "1"}
    ) == {"google.com/tpu": 4, "cloud-tpus.google.com/v3": 8}
