"""An emulated device plugin for emulated nodes: distinct accelerator devices per container, as a kubelet's device
manager hands them out, so scripted pods can report exactly the devices they were given.

Why: a scheduling conformance check ("a pod that asked for two GPUs sees two", "two pods on one node see disjoint
GPUs", "the product label matches what the pod reports") needs the node side to assign concrete devices, not only
to count them. On a real node the NVIDIA device plugin's ``Allocate`` picks device ids and the container runtime
exposes only those; here :class:`EmulatedDevicePlugin` picks them from each emulated node's inventory, records the
choice on the pod (annotation :data:`DEVICES_ANNOTATION`, labelled emulated like everything on these nodes) and
hands it to the scripted runtime in a :class:`ScriptContext`, whose :meth:`ScriptContext.nvidia_smi_list` renders
``nvidia-smi -L`` lines for exactly those devices.

The inventory follows what the NVIDIA GPU Operator advertises:

* ``nvidia.com/gpu: N``: N whole GPUs, named from the node's ``nvidia.com/gpu.product`` label (GFD writes the
  product name with spaces as ``-``; the emulated name turns them back into spaces).
* time-slicing (``nvidia.com/gpu.replicas: R`` with ``nvidia.com/gpu.sharing-strategy: time-slicing``): the node
  advertises ``N`` = physical GPUs x R; each physical GPU is handed out up to R times, so pods can share one.
* MIG (mixed strategy): ``nvidia.com/mig-<profile>: K`` advertises K MIG instances, each listed under a parent GPU
  as nvidia-smi does (``  MIG 1g.10gb     Device  0: (UUID: MIG-...)``).
* ``google.com/tpu`` (and the legacy ``cloud-tpus.google.com/*``): chips ``/dev/accel<i>``.

Allocation fails the way the kubelet's does (``UnexpectedAdmissionError``) when the scheduler's accounting and the
devices disagree; devices are freed when the pod finishes or is deleted.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEVICES_ANNOTATION",
    "AllocationError",
    "EmulatedDevice",
    "EmulatedDevicePlugin",
    "ScriptContext",
    "device_resources",
]

DEVICES_ANNOTATION = "aibench.io/emulated-devices"
GPU = "nvidia.com/gpu"
TPU = "google.com/tpu"
_MIG = re.compile(r"^nvidia\.com/mig-(?P<profile>\d+g\.\d+gb(?:\+me)?)$")
_LEGACY_TPU = re.compile(r"^cloud-tpus\.google\.com/")


def device_resources(resources: Mapping[str, Any]) -> dict[str, int]:
    """The accelerator resources (and whole-number amounts) among a container's limits or a node's allocatable."""
    out: dict[str, int] = {}
    for name, amount in resources.items():
        if name in (GPU, TPU) or _MIG.match(name) or _LEGACY_TPU.match(name):
            try:
                count = int(str(amount))
            except ValueError:
                continue
            if count > 0:
                out[name] = count
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatedDevice:
    """One device as a container sees it. ``index`` is the physical GPU (or TPU chip) index on the node."""

    resource: str
    index: int
    uuid: str
    name: str
    mig_profile: str = ""
    mig_device: int = 0
    parent_uuid: str = ""
    replica: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"resource": self.resource, "index": self.index, "uuid": self.uuid, "name": self.name}
        if self.mig_profile:
            out.update(mig_profile=self.mig_profile, mig_device=self.mig_device, parent_uuid=self.parent_uuid)
        if self.replica:
            out["replica"] = self.replica
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptContext:
    """What a scripted (emulated) pod knows about itself: where it runs and the devices each container got."""

    namespace: str
    pod: str
    node: str
    node_labels: Mapping[str, str] = field(default_factory=dict)
    devices: Mapping[str, tuple[EmulatedDevice, ...]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)  # the pod's (e.g. a Job's completion index)

    def container_devices(self, container: str = "") -> tuple[EmulatedDevice, ...]:
        """The devices of ``container`` (default: the first container)."""
        if not container:
            return next(iter(self.devices.values()), ())
        return self.devices.get(container, ())

    def nvidia_smi_list(self, container: str = "") -> str:
        """``nvidia-smi -L`` output inside ``container``: its GPUs (re-indexed from 0, as in a container) and MIG
        instances under their parent GPU. Empty when the container got no NVIDIA device."""
        gpus: dict[str, tuple[str, list[EmulatedDevice]]] = {}
        for device in self.container_devices(container):
            if device.resource == GPU:
                gpus.setdefault(device.uuid, (device.name, []))
            elif device.mig_profile:
                gpus.setdefault(device.parent_uuid, (device.name, []))[1].append(device)
        lines = []
        for position, (gpu_uuid, (name, migs)) in enumerate(gpus.items()):
            lines.append(f"GPU {position}: {name} (UUID: {gpu_uuid})")
            for mig in migs:
                lines.append(f"  MIG {mig.mig_profile:<11} Device {mig.mig_device:>2}: (UUID: {mig.uuid})")
        return "".join(line + "\n" for line in lines)


class AllocationError(Exception):
    """The kubelet's admission failure when devices run out (``UnexpectedAdmissionError``)."""


def _gpu_uuid(node: str, index: int) -> str:
    text = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"gpu{index}.{node}.emulated.aibench.io"))
    return f"GPU-{text}"


def _mig_uuid(node: str, profile: str, index: int) -> str:
    return f"MIG-{uuid.uuid5(uuid.NAMESPACE_DNS, f'mig-{profile}-{index}.{node}.emulated.aibench.io')}"


@dataclass(slots=True)
class _Slot:
    device: EmulatedDevice
    owners: list[str] = field(default_factory=list)
    capacity: int = 1


def _inventory(node: Mapping[str, Any]) -> dict[str, list[_Slot]]:
    """Resource -> device slots of one emulated node, from its allocatable and labels."""
    meta = node.get("metadata") or {}
    name = meta.get("name", "")
    labels = meta.get("labels") or {}
    allocatable = device_resources((node.get("status") or {}).get("allocatable") or {})
    product = labels.get("nvidia.com/gpu.product", "NVIDIA GPU").replace("-", " ")
    slots: dict[str, list[_Slot]] = {}
    if GPU in allocatable:
        try:
            replicas = max(1, int(labels.get("nvidia.com/gpu.replicas", "1")))
        except ValueError:
            replicas = 1
        physical = max(1, allocatable[GPU] // replicas)
        slots[GPU] = [
            _Slot(
                device=EmulatedDevice(resource=GPU, index=i, uuid=_gpu_uuid(name, i), name=product),
                capacity=replicas,
            )
            for i in range(physical)
        ]
    for parent, resource in enumerate(sorted(r for r in allocatable if _MIG.match(r))):
        profile = _MIG.match(resource)["profile"]  # type: ignore[index]
        devices = []
        for k in range(allocatable[resource]):
            devices.append(
                _Slot(
                    device=EmulatedDevice(
                        resource=resource,
                        index=parent,
                        uuid=_mig_uuid(name, profile, k),
                        name=product,
                        mig_profile=profile,
                        mig_device=k,
                        parent_uuid=_gpu_uuid(name, parent),
                    )
                )
            )
        slots[resource] = devices
    for resource in (r for r in allocatable if r == TPU or _LEGACY_TPU.match(r)):
        accel = labels.get("cloud.google.com/gke-tpu-accelerator", resource.rsplit("/", 1)[-1])
        slots[resource] = [
            _Slot(
                device=EmulatedDevice(
                    resource=resource,
                    index=i,
                    uuid=f"/dev/accel{i}",
                    name=accel,
                )
            )
            for i in range(allocatable[resource])
        ]
    return slots


class EmulatedDevicePlugin:
    """Device allocation for every emulated node; thread-safe (the kubelet thread and API hooks call it)."""

    def __init__(self) -> None:
        self._nodes: dict[str, dict[str, list[_Slot]]] = {}
        self._by_pod: dict[str, list[_Slot]] = {}
        self._lock = threading.Lock()

    def register(self, node: Mapping[str, Any]) -> None:
        """Build the node's device inventory (called when the node is registered)."""
        with self._lock:
            self._nodes[node["metadata"]["name"]] = _inventory(node)

    def allocate(self, pod: Mapping[str, Any]) -> dict[str, tuple[EmulatedDevice, ...]]:
        """Devices for every container of ``pod`` (container name -> devices); idempotent per pod uid.

        Whole GPUs go to the least-shared physical GPU first (time-slicing replicas fill one GPU only when all are
        taken), as the NVIDIA plugin's default allocation policy spreads replicas."""
        uid = pod["metadata"]["uid"]
        node_name = pod["spec"].get("nodeName", "")
        with self._lock:
            inventory = self._nodes.get(node_name, {})
            if uid in self._by_pod:
                return self._view(pod, self._by_pod[uid])
            taken: list[_Slot] = []
            try:
                for container in pod["spec"].get("containers") or []:
                    resources = container.get("resources") or {}
                    wanted = device_resources(resources.get("limits") or resources.get("requests") or {})
                    for resource, count in wanted.items():
                        free = [s for s in inventory.get(resource, []) if len(s.owners) < s.capacity]
                        free.sort(key=lambda s: (len(s.owners), s.device.index))
                        if len(free) < count:
                            raise AllocationError(
                                f"Allocate failed due to requested number of devices unavailable for {resource}. "
                                f"Requested: {count}, Available: {len(free)}, which is unexpected"
                            )
                        for slot in free[:count]:
                            slot.owners.append(f"{uid}/{container['name']}")
                            taken.append(slot)
            except AllocationError:
                for slot in taken:
                    slot.owners = [o for o in slot.owners if not o.startswith(uid + "/")]
                raise
            self._by_pod[uid] = taken
            return self._view(pod, taken)

    def _view(self, pod: Mapping[str, Any], slots: list[_Slot]) -> dict[str, tuple[EmulatedDevice, ...]]:
        uid = pod["metadata"]["uid"]
        out: dict[str, list[EmulatedDevice]] = {c["name"]: [] for c in pod["spec"].get("containers") or []}
        for slot in slots:
            for owner in slot.owners:
                pod_uid, _, container = owner.partition("/")
                if pod_uid == uid and container in out:
                    replica = slot.owners.index(owner) if slot.capacity > 1 else 0
                    device = slot.device
                    if replica:
                        device = EmulatedDevice(**{**_fields(device), "replica": replica})
                    if device not in out[container]:
                        out[container].append(device)
        return {name: tuple(devices) for name, devices in out.items()}

    def release(self, uid: str) -> None:
        """Free the devices of a finished or deleted pod."""
        with self._lock:
            for slot in self._by_pod.pop(uid, []):
                slot.owners = [o for o in slot.owners if not o.startswith(uid + "/")]

    @staticmethod
    def annotation(devices: Mapping[str, tuple[EmulatedDevice, ...]]) -> str:
        """The pod annotation value: container -> device UUIDs (compact JSON)."""
        return json.dumps({c: [d.uuid for d in ds] for c, ds in devices.items() if ds}, separators=(",", ":"))


def _fields(device: EmulatedDevice) -> dict[str, Any]:
    return {name: getattr(device, name) for name in EmulatedDevice.__dataclass_fields__}
