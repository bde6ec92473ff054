"""The host as a Kubernetes Node: CPU, memory, disk and NVIDIA GPUs (DESIGN.md section 4, "node inventory").

The embedded target has exactly one real node, the machine it runs on. Suites and the scheduler read it through
the API like any other node, so the object must be complete (the official client validates responses strictly and
raises on a missing ``nodeInfo`` field) and must carry the labels real clusters carry: the well-known
``kubernetes.io/*`` ones and the GPU-Feature-Discovery ``nvidia.com/*`` ones, so profile matching and
``nodeSelector`` in workloads behave as on a GPU Operator cluster.

Reading the host never raises: a missing ``/proc`` file or an absent NVIDIA driver yields a smaller node, not a
crash, because "no GPUs here" is a valid answer for a CPU-only machine (DESIGN.md section 9).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__

__all__ = [
    "CONTAINER_RUNTIME_VERSION",
    "DEFAULT_MAX_PODS",
    "GPU_RESOURCE",
    "GPU_UUIDS_ANNOTATION",
    "KUBELET_VERSION",
    "GpuInfo",
    "GpuInventory",
    "NvmlProbe",
    "base_labels",
    "build_node",
    "gpu_labels",
    "host_node",
    "kube_arch",
    "node_info",
    "rfc3339",
    "sanitize_label_value",
    "sanitize_node_name",
]

logger = logging.getLogger(__name__)

KUBELET_VERSION = "v1.31.0-aibench"
"""What ``status.nodeInfo.kubeletVersion`` reports; the "-aibench" suffix tells reports this is not a real kubelet."""

CONTAINER_RUNTIME_VERSION = f"aibench-process://{__version__}"
"""Containers run as host processes; the scheme says so wherever ``kubectl get nodes -o wide`` shows the runtime."""

DEFAULT_MAX_PODS = "110"
"""The kubelet's default ``--max-pods``, so pod-count scheduling limits match a stock node."""

GPU_RESOURCE = "nvidia.com/gpu"
"""The extended resource the NVIDIA device plugin advertises; workloads request exactly this name."""

GPU_UUIDS_ANNOTATION = "aibench.io/gpu-uuids"
"""Comma list of GPU UUIDs in index order, so the kubelet can set CUDA_VISIBLE_DEVICES for the GPUs it allocates."""

EMBEDDED_LABEL = "aibench.io/embedded"

_ARCH_MAP: dict[str, str] = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "i386": "386",
    "i686": "386",
}


# --------------------------------------------------------------------------------------------------------------------
# GPUs through NVML


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuInfo:
    """One physical GPU as NVML reports it; ``mig_mode`` is None when the GPU cannot do MIG at all."""

    index: int
    uuid: str
    name: str
    memory_mib: int
    pci_bus_id: str
    mig_mode: bool | None = None
    compute_capability: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuInventory:
    """What NVML says about the host: empty ``gpus`` (and empty versions) when there is no driver or no GPU."""

    driver_version: str = ""
    cuda_driver_version: tuple[int, int] | None = None
    gpus: tuple[GpuInfo, ...] = ()

    @property
    def count(self) -> int:
        """Number of whole GPUs, the value of the ``nvidia.com/gpu`` capacity."""
        return len(self.gpus)


def _text(value: str | bytes) -> str:
    """pynvml returned bytes before 11.5 and str after; accept both so a fake or an old module both work."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class NvmlProbe:
    """Reads GPUs through NVML. ``nvml`` is the ``pynvml`` module by default and a fake in tests.

    Any ``NVMLError`` at init (no library, no driver, insufficient permissions) means "no GPUs" and is logged at
    INFO: a CPU-only host is a supported target, not a failure. A GPU that errors on its own (fallen off the bus)
    is skipped with a WARNING so the rest of the node still registers.
    """

    nvml: Any = None

    def _module(self) -> Any:
        if self.nvml is not None:
            return self.nvml
        try:
            import pynvml
        except ImportError:
            logger.info("pynvml is not importable (nvidia-ml-py missing); assuming no GPUs")
            return None
        return pynvml

    def probe(self) -> GpuInventory:
        """Return the host's GPU inventory; never raises for NVML errors."""
        nvml = self._module()
        if nvml is None:
            return GpuInventory()
        nvml_error: type[Exception] = getattr(nvml, "NVMLError", Exception)
        try:
            nvml.nvmlInit()
        except nvml_error as exc:
            logger.info("NVML unavailable (%s): no NVIDIA GPUs on this host", exc)
            return GpuInventory()
        try:
            return self._read(nvml, nvml_error)
        except nvml_error as exc:
            logger.warning("NVML failed while listing GPUs (%s); reporting no GPUs", exc)
            return GpuInventory()
        finally:
            try:
                nvml.nvmlShutdown()
            except nvml_error as exc:
                logger.debug("nvmlShutdown failed: %s", exc)

    def _read(self, nvml: Any, nvml_error: type[Exception]) -> GpuInventory:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        cuda: tuple[int, int] | None
        try:
            raw = int(nvml.nvmlSystemGetCudaDriverVersion())
            cuda = (raw // 1000, (raw % 1000) // 10)
        except nvml_error as exc:
            logger.debug("CUDA driver version unavailable: %s", exc)
            cuda = None
        gpus: list[GpuInfo] = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            try:
                gpus.append(self._device(nvml, nvml_error, index))
            except nvml_error as exc:
                logger.warning("skipping GPU %d: NVML error %s", index, exc)
        logger.info("NVML: driver %s, %d GPU(s): %s", driver, len(gpus), ", ".join(g.name for g in gpus) or "none")
        return GpuInventory(driver_version=driver, cuda_driver_version=cuda, gpus=tuple(gpus))

    @staticmethod
    def _device(nvml: Any, nvml_error: type[Exception], index: int) -> GpuInfo:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        mig: bool | None
        try:
            current, _pending = nvml.nvmlDeviceGetMigMode(handle)
            mig = bool(current)
        except nvml_error:
            mig = None  # NOT_SUPPORTED: the GPU is not MIG-capable
        capability: tuple[int, int] | None
        try:
            major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            capability = (int(major), int(minor))
        except nvml_error:
            capability = None
        return GpuInfo(
            index=index,
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            name=_text(nvml.nvmlDeviceGetName(handle)),
            memory_mib=int(nvml.nvmlDeviceGetMemoryInfo(handle).total) // (1024 * 1024),
            pci_bus_id=_text(nvml.nvmlDeviceGetPciInfo(handle).busId),
            mig_mode=mig,
            compute_capability=capability,
        )


def _gpu_family(capability: tuple[int, int] | None) -> str | None:
    """GFD's architecture family from the compute capability (nvidia.com/gpu.family)."""
    if capability is None:
        return None
    major, minor = capability
    families = {1: "tesla", 2: "fermi", 3: "kepler", 5: "maxwell", 6: "pascal", 9: "hopper", 10: "blackwell"}
    if major == 7:
        return "volta" if minor < 5 else "turing"
    if major == 8:
        return "ampere" if minor < 9 else "ada-lovelace"
    if major in (10, 12):
        return "blackwell"
    return families.get(major, "undefined")


def gpu_labels(inventory: GpuInventory, *, machine: str | None = None) -> dict[str, str]:
    """GPU-Feature-Discovery-style labels for the inventory; empty when there are no GPUs.

    Names follow GFD: ``cuda.driver-version.*`` is the *driver* (550.107.02) and ``cuda.runtime-version.*`` the
    highest CUDA version the driver supports (12.5); the deprecated ``cuda.driver.*``/``cuda.runtime.*`` twins are
    kept because older selectors and dashboards still read them. Per-GPU values come from GPU 0, as GFD does
    (it assumes a homogeneous node).
    """
    if not inventory.gpus:
        return {}
    first = inventory.gpus[0]
    labels: dict[str, str] = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.count": str(inventory.count),
        "nvidia.com/gpu.product": sanitize_label_value(first.name.replace(" ", "-")),
        "nvidia.com/gpu.memory": str(first.memory_mib),
        "nvidia.com/gpu.mode": "compute",
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.sharing-strategy": "none",
        "nvidia.com/mig.capable": "true" if any(g.mig_mode is not None for g in inventory.gpus) else "false",
        "nvidia.com/mps.capable": "false",
    }
    if first.compute_capability is not None:
        labels["nvidia.com/gpu.compute.major"] = str(first.compute_capability[0])
        labels["nvidia.com/gpu.compute.minor"] = str(first.compute_capability[1])
    family = _gpu_family(first.compute_capability)
    if family is not None:
        labels["nvidia.com/gpu.family"] = family
    if machine:
        labels["nvidia.com/gpu.machine"] = sanitize_label_value(machine.replace(" ", "-"))
    parts = inventory.driver_version.split(".")
    if inventory.driver_version and all(p.isdigit() for p in parts):
        labels["nvidia.com/cuda.driver-version.full"] = inventory.driver_version
        labels["nvidia.com/cuda.driver-version.major"] = parts[0]
        labels["nvidia.com/cuda.driver.major"] = parts[0]
        if len(parts) > 1:
            labels["nvidia.com/cuda.driver-version.minor"] = parts[1]
            labels["nvidia.com/cuda.driver.minor"] = parts[1]
        if len(parts) > 2:
            labels["nvidia.com/cuda.driver-version.revision"] = parts[2]
            labels["nvidia.com/cuda.driver.rev"] = parts[2]
    if inventory.cuda_driver_version is not None:
        major, minor = inventory.cuda_driver_version
        labels["nvidia.com/cuda.runtime-version.full"] = f"{major}.{minor}"
        labels["nvidia.com/cuda.runtime-version.major"] = str(major)
        labels["nvidia.com/cuda.runtime-version.minor"] = str(minor)
        labels["nvidia.com/cuda.runtime.major"] = str(major)
        labels["nvidia.com/cuda.runtime.minor"] = str(minor)
    return labels


# --------------------------------------------------------------------------------------------------------------------
# Host facts


def _read_text(path: Path) -> str | None:
    """File contents, or None when absent/unreadable: every host fact has a fallback."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def kube_arch(machine: str | None = None) -> str:
    """GOARCH-style architecture (amd64, arm64) for ``kubernetes.io/arch``, from ``platform.machine()``."""
    raw = (machine if machine is not None else platform.machine()).lower()
    return _ARCH_MAP.get(raw, raw or "unknown")


def sanitize_label_value(value: str) -> str:
    """Make ``value`` a valid label value (<=63 chars, alphanumeric ends, ``-_.`` inside) by replacing the rest."""
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def sanitize_node_name(hostname: str) -> str:
    """Lowercase RFC 1123 DNS label from a hostname; it also serves as the ``kubernetes.io/hostname`` value.

    A label (<=63, no dots) rather than a subdomain, because the same string must be a valid label value.
    """
    name = hostname.strip().lower().split(".")[0]
    name = re.sub(r"[^a-z0-9-]+", "-", name)[:63].strip("-")
    return name or "localhost"


def _cpu_count() -> int:
    """CPUs this process may use (affinity/cpuset aware), which is what pods on this node can actually get."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _memory_kib(fs_root: Path) -> int:
    text = _read_text(fs_root / "proc/meminfo")
    if text:
        match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
        if match:
            return int(match.group(1))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
    except (ValueError, OSError, AttributeError):
        logger.warning("cannot determine host memory; reporting 0")
        return 0


def _disk_bytes(data_dir: Path) -> int:
    try:
        return shutil.disk_usage(data_dir).total
    except OSError as exc:
        logger.warning("cannot stat %s for ephemeral-storage (%s); reporting 0", data_dir, exc)
        return 0


def _os_image(fs_root: Path) -> str:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        text = _read_text(fs_root / candidate)
        if text is None:
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "PRETTY_NAME":
                return value.strip().strip("\"'") or "Linux"
    return "Linux"


def _system_uuid(fs_root: Path, machine_id: str, name: str) -> str:
    """DMI product UUID when readable (root only), else one derived from machine-id or the node name.

    A stable value matters more than a true one: reports key per-node tables by it across runs.
    """
    text = _read_text(fs_root / "sys/class/dmi/id/product_uuid")
    if text and text.strip():
        return text.strip().lower()
    if re.fullmatch(r"[0-9a-f]{32}", machine_id):
        return str(uuid.UUID(machine_id))
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


def rfc3339(moment: datetime | None = None) -> str:
    """Kubernetes' timestamp form, whole seconds in UTC: ``2024-05-01T12:00:00Z``."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _kernel_labels(release: str) -> dict[str, str]:
    """NFD's kernel-version labels, so selectors written for NFD clusters keep matching."""
    labels = {"feature.node.kubernetes.io/kernel-version.full": sanitize_label_value(release)}
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if match:
        labels["feature.node.kubernetes.io/kernel-version.major"] = match.group(1)
        labels["feature.node.kubernetes.io/kernel-version.minor"] = match.group(2)
        if match.group(3) is not None:
            labels["feature.node.kubernetes.io/kernel-version.revision"] = match.group(3)
    return {k: v for k, v in labels.items() if v}


# --------------------------------------------------------------------------------------------------------------------
# Node objects


def _conditions(now: str) -> list[dict[str, str]]:
    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return [
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def build_node(
    *,
    name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    capacity: Mapping[str, str],
    allocatable: Mapping[str, str] | None = None,
    node_info: Mapping[str, str],
    internal_ip: str,
    taints: Sequence[Mapping[str, str]] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Assemble a complete v1 Node dict; shared by the host node and emulated nodes so both have one shape."""
    stamp = rfc3339(now)
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels), "annotations": dict(annotations)},
        "spec": spec,
        "status": {
            "capacity": dict(capacity),
            "allocatable": dict(allocatable if allocatable is not None else capacity),
            "conditions": _conditions(stamp),
            "addresses": [
                {"type": "InternalIP", "address": internal_ip},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": dict(node_info),
            "images": [],
        },
    }


def node_info(
    *,
    arch: str,
    boot_id: str = "",
    machine_id: str = "",
    system_uuid: str,
    os_image: str,
    kernel_version: str | None = None,
) -> dict[str, str]:
    """Every field ``V1NodeSystemInfo`` requires (the client raises on a missing one)."""
    return {
        "architecture": arch,
        "bootID": boot_id,
        "containerRuntimeVersion": CONTAINER_RUNTIME_VERSION,
        "kernelVersion": kernel_version if kernel_version is not None else platform.release(),
        "kubeProxyVersion": KUBELET_VERSION,
        "kubeletVersion": KUBELET_VERSION,
        "machineID": machine_id,
        "operatingSystem": "linux",
        "osImage": os_image,
        "systemUUID": system_uuid,
    }


def base_labels(name: str, arch: str) -> dict[str, str]:
    """The well-known labels every kubelet sets (kubernetes.io/hostname, os, arch and their beta twins)."""
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
    }


def host_node(
    name: str | None = None,
    *,
    nvml: NvmlProbe | None = None,
    data_dir: Path | None = None,
    fs_root: Path = Path("/"),
    now: datetime | None = None,
) -> dict[str, Any]:
    """The host as a complete v1 Node dict.

    ``name`` defaults to the sanitised hostname. ``data_dir`` is where pod data lives (its filesystem size is
    ``ephemeral-storage``; default: the temp dir). ``fs_root`` relocates ``/proc``, ``/etc`` and ``/sys`` reads
    so tests can exercise the fallbacks. No taints and no control-plane role: workloads must land here unmodified.
    """
    if name is None:
        name = sanitize_node_name(socket.gethostname())
    elif sanitize_node_name(name) != name:
        raise ValueError(f"node name {name!r} is not a lowercase RFC 1123 label (try {sanitize_node_name(name)!r})")
    arch = kube_arch()
    release = platform.release()
    machine_id = (_read_text(fs_root / "etc/machine-id") or "").strip()
    boot_id = (_read_text(fs_root / "proc/sys/kernel/random/boot_id") or "").strip()
    inventory = (nvml or NvmlProbe()).probe()
    product = (_read_text(fs_root / "sys/class/dmi/id/product_name") or "").strip()

    capacity = {
        "cpu": str(_cpu_count()),
        "memory": f"{_memory_kib(fs_root)}Ki",
        "ephemeral-storage": str(_disk_bytes(data_dir or Path(tempfile.gettempdir()))),
        "pods": DEFAULT_MAX_PODS,
    }
    labels = base_labels(name, arch)
    labels["node.kubernetes.io/instance-type"] = "embedded"
    labels[EMBEDDED_LABEL] = "true"
    labels.update(_kernel_labels(release))
    annotations: dict[str, str] = {}
    if inventory.gpus:
        capacity[GPU_RESOURCE] = str(inventory.count)
        labels.update(gpu_labels(inventory, machine=product or None))
        annotations[GPU_UUIDS_ANNOTATION] = ",".join(g.uuid for g in inventory.gpus)

    info = node_info(
        arch=arch,
        boot_id=boot_id,
        machine_id=machine_id,
        system_uuid=_system_uuid(fs_root, machine_id, name),
        os_image=_os_image(fs_root),
        kernel_version=release,
    )
    logger.info("host node %s: cpu=%s memory=%s gpus=%d", name, capacity["cpu"], capacity["memory"], inventory.count)
    return build_node(
        name=name,
        labels=labels,
        annotations=annotations,
        capacity=capacity,
        node_info=info,
        internal_ip="127.0.0.1",
        now=now,
    )
