from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pynvml
import pytest
from kubernetes.client import ApiClient

from harness.embedded.inventory import (
    GPU_RESOURCE,
    GPU_UUIDS_ANNOTATION,
    KUBELET_VERSION,
    GpuInfo,
    GpuInventory,
    NvmlProbe,
    gpu_labels,
    host_node,
    kube_arch,
    sanitize_node_name,
)

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
H100 = "NVIDIA H100 80GB HBM3"


class FakeNvml:
    """The pynvml functions the probe calls, backed by a list of fake GPUs."""

    NVMLError = pynvml.NVMLError

    def __init__(self, gpus: list[dict], *, init_error: int | None = None, driver: str = "550.107.02") -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.driver = driver
        self.shutdowns = 0
        self.inits = 0

    def nvmlInit(self) -> None:
        self.inits += 1
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12050

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict:
        gpu = self.gpus[index]
        if gpu.get("lost"):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return gpu

    def nvmlDeviceGetName(self, handle: dict) -> bytes:
        return handle["name"].encode()  # old pynvml returned bytes; the probe must cope

    def nvmlDeviceGetUUID(self, handle: dict) -> str:
        return handle["uuid"]

    def nvmlDeviceGetMemoryInfo(self, handle: dict) -> SimpleNamespace:
        return SimpleNamespace(total=handle["mib"] * 1024 * 1024, free=0, used=0)

    def nvmlDeviceGetPciInfo(self, handle: dict) -> SimpleNamespace:
        return SimpleNamespace(busId=handle["bus"])

    def nvmlDeviceGetMigMode(self, handle: dict) -> tuple[int, int]:
        if handle.get("mig") is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return (handle["mig"], handle["mig"])

    def nvmlDeviceGetCudaComputeCapability(self, handle: dict) -> tuple[int, int]:
        return handle.get("cc", (9, 0))


def two_h100s() -> FakeNvml:
    return FakeNvml(
        [
            {"name": H100, "uuid": "GPU-aaaa", "mib": 81559, "bus": "00000000:18:00.0", "mig": 0},
            {"name": H100, "uuid": "GPU-bbbb", "mib": 81559, "bus": "00000000:2A:00.0", "mig": 0},
        ]
    )


def deserialize(node: dict):
    return ApiClient()._ApiClient__deserialize(node, "V1Node")


@pytest.mark.parametrize(
    "error", [pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED, pynvml.NVML_ERROR_NO_PERMISSION]
)
def test_no_driver_means_no_gpus(error: int, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeNvml([], init_error=error)
    with caplog.at_level(logging.INFO, logger="harness.embedded.inventory"):
        node = host_node("cpu-box", nvml=NvmlProbe(nvml=fake))
    assert GPU_RESOURCE not in node["status"]["capacity"]
    assert GPU_RESOURCE not in node["status"]["allocatable"]
    assert not any(k.startswith("nvidia.com/") for k in node["metadata"]["labels"])
    assert GPU_UUIDS_ANNOTATION not in node["metadata"]["annotations"]
    assert all(r.levelno == logging.INFO for r in caplog.records)
    assert any("no NVIDIA GPUs" in r.getMessage() for r in caplog.records)


def test_two_h100s() -> None:
    fake = two_h100s()
    node = host_node("gpu-box", nvml=NvmlProbe(nvml=fake))
    assert fake.shutdowns == 1
    assert node["status"]["capacity"][GPU_RESOURCE] == "2"
    assert node["status"]["allocatable"][GPU_RESOURCE] == "2"
    labels = node["metadata"]["labels"]
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/gpu.memory"] == "81559"
    assert labels["nvidia.com/gpu.count"] == "2"
    assert labels["nvidia.com/gpu.family"] == "hopper"
    assert labels["nvidia.com/gpu.compute.major"] == "9"
    assert labels["nvidia.com/gpu.compute.minor"] == "0"
    assert labels["nvidia.com/mig.capable"] == "true"
    assert labels["nvidia.com/cuda.driver-version.full"] == "550.107.02"
    assert labels["nvidia.com/cuda.driver-version.major"] == "550"
    assert labels["nvidia.com/cuda.driver-version.minor"] == "107"
    assert labels["nvidia.com/cuda.driver-version.revision"] == "02"
    assert labels["nvidia.com/cuda.driver.major"] == "550"
    assert labels["nvidia.com/cuda.runtime-version.full"] == "12.5"
    assert labels["nvidia.com/cuda.runtime.major"] == "12"
    assert labels["nvidia.com/cuda.runtime.minor"] == "5"
    assert node["metadata"]["annotations"][GPU_UUIDS_ANNOTATION] == "GPU-aaaa,GPU-bbbb"
    model = deserialize(node)
    assert model.status.capacity[GPU_RESOURCE] == "2"


def test_probe_reads_gpu_details() -> None:
    inventory = NvmlProbe(nvml=two_h100s()).probe()
    assert inventory.driver_version == "550.107.02"
    assert inventory.cuda_driver_version == (12, 5)
    assert inventory.gpus[1] == GpuInfo(
        index=1,
        uuid="GPU-bbbb",
        name=H100,
        memory_mib=81559,
        pci_bus_id="00000000:2A:00.0",
        mig_mode=False,
        compute_capability=(9, 0),
    )


def test_lost_gpu_is_skipped_and_shutdown_still_called() -> None:
    fake = two_h100s()
    fake.gpus[0]["lost"] = True
    inventory = NvmlProbe(nvml=fake).probe()
    assert [g.uuid for g in inventory.gpus] == ["GPU-bbbb"]
    assert fake.shutdowns == 1


def test_error_after_init_still_shuts_down() -> None:
    fake = two_h100s()

    def boom() -> int:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)

    fake.nvmlDeviceGetCount = boom  # type: ignore[method-assign]
    assert NvmlProbe(nvml=fake).probe() == GpuInventory()
    assert fake.shutdowns == 1


def test_not_mig_capable_gpu() -> None:
    fake = FakeNvml([{"name": "NVIDIA L40S", "uuid": "GPU-1", "mib": 46068, "bus": "0:1", "mig": None, "cc": (8, 9)}])
    labels = gpu_labels(NvmlProbe(nvml=fake).probe())
    assert labels["nvidia.com/mig.capable"] == "false"
    assert labels["nvidia.com/gpu.family"] == "ada-lovelace"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-L40S"


def test_gpu_labels_empty_without_gpus() -> None:
    assert gpu_labels(GpuInventory()) == {}


def test_host_node_shape(tmp_path: Path) -> None:
    when = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    node = host_node("box", nvml=NvmlProbe(nvml=FakeNvml([], init_error=1)), data_dir=tmp_path, now=when)
    assert node["apiVersion"] == "v1"
    assert node["kind"] == "Node"
    assert node["spec"] == {}
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "box"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] == kube_arch()
    assert labels["beta.kubernetes.io/arch"] == kube_arch()
    assert labels["node.kubernetes.io/instance-type"] == "embedded"
    assert labels["aibench.io/embedded"] == "true"
    assert not any(k.startswith("node-role.kubernetes.io/") for k in labels)
    status = node["status"]
    assert int(status["capacity"]["cpu"]) >= 1
    assert re.fullmatch(r"[1-9]\d*Ki", status["capacity"]["memory"])
    assert int(status["capacity"]["ephemeral-storage"]) > 0
    assert status["capacity"]["pods"] == "110"
    assert status["allocatable"] == status["capacity"]
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "127.0.0.1"},
        {"type": "Hostname", "address": "box"},
    ]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["reason"] == "KubeletReady"
    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert conditions[kind]["status"] == "False"
    for condition in status["conditions"]:
        assert condition["lastHeartbeatTime"] == "2024-05-01T12:00:00Z"
        assert RFC3339.match(condition["lastTransitionTime"])
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == KUBELET_VERSION == "v1.31.0-aibench"
    assert info["containerRuntimeVersion"].startswith("aibench-process://")
    assert info["operatingSystem"] == "linux"


def test_host_node_deserializes_with_official_client() -> None:
    node = host_node(nvml=NvmlProbe(nvml=FakeNvml([], init_error=1)))
    model = deserialize(node)
    assert model.metadata.name == node["metadata"]["name"]
    assert model.status.node_info.kubelet_version == KUBELET_VERSION
    assert model.status.conditions[-1].type == "Ready"


def test_missing_proc_files_fall_back(tmp_path: Path) -> None:
    empty_root = tmp_path / "root"
    empty_root.mkdir()
    node = host_node(
        "box",
        nvml=NvmlProbe(nvml=FakeNvml([], init_error=1)),
        fs_root=empty_root,
        data_dir=tmp_path / "does-not-exist",
    )
    info = node["status"]["nodeInfo"]
    assert info["bootID"] == ""
    assert info["machineID"] == ""
    assert info["osImage"] == "Linux"
    assert re.fullmatch(r"[0-9a-f-]{36}", info["systemUUID"])
    assert node["status"]["capacity"]["ephemeral-storage"] == "0"
    # memory falls back to sysconf, which still reports the real amount
    assert node["status"]["capacity"]["memory"].endswith("Ki")
    deserialize(node)


def test_fake_proc_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "proc/sys/kernel/random").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemTotal:       24576000 kB\nMemFree:  1 kB\n")
    (tmp_path / "proc/sys/kernel/random/boot_id").write_text("0e3c1b52-1111-2222-3333-444455556666\n")
    (tmp_path / "etc/machine-id").write_text("3d1219c7c4c5404aaa1f6d2a48adfda4\n")
    (tmp_path / "etc/os-release").write_text('NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n')
    node = host_node("box", nvml=NvmlProbe(nvml=FakeNvml([], init_error=1)), fs_root=tmp_path)
    assert node["status"]["capacity"]["memory"] == "24576000Ki"
    info = node["status"]["nodeInfo"]
    assert info["bootID"] == "0e3c1b52-1111-2222-3333-444455556666"
    assert info["machineID"] == "3d1219c7c4c5404aaa1f6d2a48adfda4"
    assert info["systemUUID"] == "3d1219c7-c4c5-404a-aa1f-6d2a48adfda4"
    assert info["osImage"] == "Ubuntu 22.04.4 LTS"


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [("Gpu-Box", "gpu-box"), ("worker_01.example.com", "worker-01"), ("___", "localhost"), ("a" * 80, "a" * 63)],
)
def test_sanitize_node_name(hostname: str, expected: str) -> None:
    assert sanitize_node_name(hostname) == expected


def test_invalid_explicit_name_rejected() -> None:
    with pytest.raises(ValueError, match="RFC 1123"):
        host_node("Bad_Name", nvml=NvmlProbe(nvml=FakeNvml([], init_error=1)))


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", "amd64"), ("aarch64", "arm64"), ("ppc64le", "ppc64le")])
def test_kube_arch(machine: str, arch: str) -> None:
    assert kube_arch(machine) == arch
