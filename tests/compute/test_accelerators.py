"""harness/probes/accelerators.py: pools, placement, sharing, TPU slices and resource forms, GPU health from node
objects, the isolation verdict and the DRA claim documents (validated against the Kubernetes schemas)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from harness.catalog.spec import load_workload
from harness.catalog.validate import ManifestValidator
from harness.cluster.capabilities import Capabilities, NodeInfo
from harness.parsers.cuda import DeviceProbe
from harness.parsers.nvidia_smi import GpuListEntry
from harness.probes.accelerators import (
    Sharing,
    accelerator_kind,
    cpu_pod_lands_on,
    dra_claim_template,
    dra_probe,
    gpu_node_for,
    gpu_sharing,
    isolation_problem,
    labelled_driver,
    measurement_nodes,
    node_health,
    node_pools,
    placement_for,
    product_matches,
    profile_gpu_mismatch,
    tpu_resource,
    tpu_slices,
)
from harness.thresholds.loader import load_profile

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def make(name: str, labels: dict[str, str] | None = None, allocatable: dict[str, str] | None = None, **kw: Any):
    return NodeInfo(
        name=name,
        labels={"kubernetes.io/hostname": name, **(labels or {})},
        allocatable={"cpu": "16", "memory": "64Gi", **(allocatable or {})},
        taints=tuple(kw.get("taints", ())),
        ready=kw.get("ready", True),
        emulated=kw.get("emulated", False),
    )


def caps(*nodes: NodeInfo) -> Capabilities:
    return Capabilities(
        server_version="v1.33.0",
        embedded=False,
        nodes=tuple(nodes),
        api_groups=frozenset(),
        addons=frozenset(),
        storage_classes=(),
        cni=(),
        prometheus=(),
    )


H100 = make(
    "gpu-a",
    {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "cloud.google.com/gke-nodepool": "h100-pool"},
    {"nvidia.com/gpu": "8"},
    taints=[GPU_TAINT],
)
L4_SLICED = make(
    "gpu-l4",
    {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.count": "2"},
    {"nvidia.com/gpu": "8"},
    taints=[GPU_TAINT],
)
MIG = make(
    "gpu-mig",
    {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB", "nvidia.com/mig.strategy": "mixed"},
    {"nvidia.com/mig-1g.5gb": "7", "nvidia.com/mig-3g.20gb": "1"},
)
TPU = make(
    "tpu-0",
    {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice", "cloud.google.com/gke-tpu-topology": "4x4"},
    {"google.com/tpu": "4"},
    taints=[{"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}],
)
CPU = make("cpu-0")


def test_pools_group_by_pool_label_or_accelerator_cpu_first():
    pools = node_pools(caps(H100, CPU, TPU, MIG, L4_SLICED))
    assert [(p.name, p.kind, p.accelerator, p.devices_per_node) for p in pools] == [
        ("cpu", "cpu", "", 0),
        ("gpu:NVIDIA-A100-SXM4-40GB", "gpu", "NVIDIA-A100-SXM4-40GB", 8),
        ("gpu:NVIDIA-L4", "gpu", "NVIDIA-L4", 8),
        ("h100-pool", "gpu", "NVIDIA-H100-80GB-HBM3", 8),
        ("tpu:tpu-v5-lite-podslice 4x4", "tpu", "tpu-v5-lite-podslice 4x4", 4),
    ]
    assert [p.reserved for p in pools] == [False, False, True, True, True]
    assert accelerator_kind(MIG) == "gpu" and accelerator_kind(CPU) == "cpu"
    assert cpu_pod_lands_on(CPU) and not cpu_pod_lands_on(H100)


def test_placement_selects_the_accelerator_label_and_tolerates_exactly_the_taints():
    placement = placement_for(H100)
    assert placement.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert placement.tolerations == (
        {"key": "nvidia.com/gpu", "effect": "NoSchedule", "operator": "Equal", "value": "present"},
    )
    assert placement.params() == {
        "node_selector": '{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}',
        "tolerations": '[{"key": "nvidia.com/gpu", "effect": "NoSchedule", "operator": "Equal", "value": "present"}]',
    }
    assert placement_for(H100, pin_node=True).node_selector["kubernetes.io/hostname"] == "gpu-a"
    affinity = json.loads(placement.affinity_params()["affinity"])
    (term,) = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term == {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In",
                                          "values": ["NVIDIA-H100-80GB-HBM3"]}]}  # fmt: skip
    assert placement.affinity_params()["node_selector"] == "{}"
    assert placement_for(TPU).node_selector == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
        "cloud.google.com/gke-tpu-topology": "4x4",
    }
    assert placement_for(CPU).node_selector == {"kubernetes.io/hostname": "cpu-0"}


def test_sharing_modes_from_gfd_labels_and_mig_resources():
    assert gpu_sharing(H100) == Sharing(strategy="none", physical_gpus=8)
    sliced = gpu_sharing(L4_SLICED)
    assert sliced.shared and sliced.replicas == 4 and sliced.physical_gpus == 2
    assert sliced.describe() == "time-slicing: 2 GPU(s) x 4 replicas"
    mig = gpu_sharing(MIG)
    assert not mig.shared and mig.describe() == "mig-mixed: mig-1g.5gb=7, mig-3g.20gb=1"


def test_node_choice_prefers_whole_gpus_and_real_nodes_for_measuring():
    emulated = make("gpu-e", {"nvidia.com/gpu.product": "X"}, {"nvidia.com/gpu": "8"}, emulated=True)
    target = caps(CPU, L4_SLICED, emulated, make("gpu-small", {"nvidia.com/gpu.product": "Y"}, {"nvidia.com/gpu": "1"}))
    assert gpu_node_for(target, min_gpus=2).name == "gpu-e"  # most GPUs, then name
    assert gpu_node_for(target, min_gpus=2, exclusive=True).name == "gpu-e"
    assert gpu_node_for(target, min_gpus=2, exclusive=True, measuring=True) is None  # the rest is emulated or shared
    assert gpu_node_for(target, measuring=True).name == "gpu-l4"
    assert [n.name for n in measurement_nodes(caps(emulated), [emulated])] == ["gpu-e"]  # emulated-only target


def test_tpu_slice_shape_and_the_deprecated_resource_form():
    second = make("tpu-1", dict(TPU.labels, **{"kubernetes.io/hostname": "tpu-1"}), {"google.com/tpu": "4"})
    (tpu_slice,) = tpu_slices(caps(TPU, second, CPU))
    assert (tpu_slice.chips, tpu_slice.chips_per_host, tpu_slice.hosts, tpu_slice.multi_host) == (16, 4, 4, True)
    assert tpu_slice.resource == "google.com/tpu" and tpu_slice.deprecated == ""
    legacy = make("tpu-old", {}, {"cloud-tpus.google.com/v3": "8"})
    resource, note = tpu_resource(legacy)
    assert resource == "cloud-tpus.google.com/v3"
    assert note.startswith("node tpu-old advertises the legacy cloud-tpus.google.com/v3 resource (Cloud TPU Nodes")
    (old,) = tpu_slices(caps(legacy))
    assert old.deprecated == note and old.chips == 8 and old.hosts == 1


def test_product_label_matching_and_a_wrong_profile():
    assert product_matches("NVIDIA-H100-80GB-HBM3", "NVIDIA H100 80GB HBM3")
    assert product_matches("NVIDIA-A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB")
    assert not product_matches("NVIDIA-H100-80GB-HBM3", "NVIDIA H100 PCIe")
    assert not product_matches("", "NVIDIA H100")
    a100 = load_profile("a100-sxm-8x-ib200")
    assert profile_gpu_mismatch(a100, caps(H100, CPU)) == (
        "profile a100-sxm-8x-ib200 expects GPU products matching 'A100-SXM4-80GB', "
        "the target's GPU nodes report NVIDIA-H100-80GB-HBM3"
    )
    assert profile_gpu_mismatch(load_profile("h100-sxm-8x-ib400"), caps(H100)) is None
    assert "the target has no GPU" in profile_gpu_mismatch(a100, caps(CPU))
    assert profile_gpu_mismatch(load_profile("cpu-only"), caps(H100)) is None


def probe(*uuids: str, window: tuple[float, float] | None = None) -> DeviceProbe:
    gpus = tuple(GpuListEntry(index=i, name="NVIDIA H100 80GB HBM3", uuid=u) for i, u in enumerate(uuids))
    return DeviceProbe(gpus=gpus, smi_rc=0, window=window)


def test_isolation_verdict():
    whole = gpu_sharing(H100)
    assert isolation_problem({"a": probe("GPU-1", window=(0, 15)), "b": probe("GPU-2", window=(1, 16))}, whole) is None
    overlap = isolation_problem({"a": probe("GPU-1", window=(0, 15)), "b": probe("GPU-1", window=(1, 16))}, whole)
    assert overlap.startswith("pods a and b can both reach GPU-1")
    apart = isolation_problem({"a": probe("GPU-1", window=(0, 5)), "b": probe("GPU-1", window=(9, 14))}, whole)
    assert apart.startswith("pods a and b did not hold their GPUs at the same time (0-5 vs 9-14)")
    assert isolation_problem({"a": probe("GPU-1"), "b": probe("GPU-1")}, gpu_sharing(L4_SLICED)) is None


def v1_node(
    name: str,
    *,
    conditions: list[tuple[str, str, str]],
    labels: dict[str, str] | None = None,
    capacity: str = "8",
    allocatable: str = "8",
) -> client.V1Node:
    return client.V1Node(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
        status=client.V1NodeStatus(
            conditions=[client.V1NodeCondition(type=t, status=s, reason=r) for t, s, r in conditions],
            capacity={"nvidia.com/gpu": capacity},
            allocatable={"nvidia.com/gpu": allocatable},
        ),
    )


def validator_pod(node_name: str, *, ready: bool) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=f"nvidia-operator-validator-{node_name}"),
        spec=client.V1PodSpec(node_name=node_name, containers=[]),
        status=client.V1PodStatus(
            phase="Running" if ready else "Pending",
            container_statuses=[
                client.V1ContainerStatus(name="v", ready=ready, restart_count=0, image="i", image_id="")
            ],
        ),
    )


def test_gpu_health_from_what_the_cluster_already_says():
    ready = [("Ready", "True", "KubeletReady")]
    healthy = node_health(v1_node("a", conditions=ready), {"a": [validator_pod("a", ready=True)]})
    assert healthy.status == "healthy" and healthy.signals["operator-validator"] == "ready"
    degraded = node_health(v1_node("b", conditions=ready, allocatable="7"), None)
    assert degraded.status == "degraded"
    assert degraded.reasons == ("device plugin reports 1 of 8 GPU(s) unhealthy",)
    evict = node_health(v1_node("c", conditions=ready, labels={"autopilot.ibm.com/gpuhealth": "EVICT"}), None)
    assert evict.status == "unhealthy" and "EVICT" in evict.reasons[0]
    npd = node_health(v1_node("d", conditions=[*ready, ("GpuUnhealthy", "True", "XidError")]), None)
    assert npd.status == "unhealthy" and npd.reasons == ("GpuUnhealthy: XidError",)
    not_ready = node_health(v1_node("e", conditions=[("Ready", "False", "KubeletNotReady")]), {})
    assert not_ready.status == "unhealthy"
    assert not_ready.reasons == ("node not Ready (KubeletNotReady)", "no nvidia-operator-validator pod on this node")
    failing = node_health(v1_node("f", conditions=ready), {"f": [validator_pod("f", ready=False)]})
    assert failing.status == "unhealthy" and "is Pending, not ready" in failing.reasons[0]


@pytest.mark.parametrize(("api_version", "versions"), [("v1beta1", ("1.33", "1.35")), ("v1", ("1.35",))])
def test_dra_probe_documents_validate_where_their_api_is_served(api_version: str, versions: tuple[str, ...]):
    spec = load_workload("gpu-device-probe")
    rendered = dra_probe(spec, device_class="gpu.nvidia.com", api_version=api_version)
    template, job = rendered.documents
    assert template["kind"] == "ResourceClaimTemplate" and job["kind"] == "Job"
    pod = job["spec"]["template"]["spec"]
    assert pod["resourceClaims"] == [{"name": "gpu", "resourceClaimTemplateName": "gpu-probe-claim"}]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert pod["containers"][0]["resources"]["claims"] == [{"name": "gpu"}]
    checker = ManifestValidator(versions=versions)
    problems = [p for doc in rendered.documents for p in checker.problems(doc, source="dra-probe")]
    assert not problems, "\n".join(map(str, problems))
    request = template["spec"]["spec"]["devices"]["requests"][0]
    assert (request.get("exactly") or request)["deviceClassName"] == "gpu.nvidia.com"


def test_dra_claim_template_shapes():
    beta = dra_claim_template("c", device_class="gpu.nvidia.com", api_version="v1beta1", count=2)
    assert beta["spec"]["spec"]["devices"]["requests"][0]["count"] == 2
    ga = dra_claim_template("c", device_class="gpu.nvidia.com", api_version="v1", count=1)
    assert ga["spec"]["spec"]["devices"]["requests"][0]["exactly"]["allocationMode"] == "ExactCount"


def test_labelled_driver_from_gfd_labels():
    new = make(
        "n", {"nvidia.com/cuda.driver-version.full": "550.54.15", "nvidia.com/cuda.runtime-version.full": "12.4"}
    )
    assert labelled_driver(new) == "550.54.15 (CUDA 12.4)"
    old = make("o", {"nvidia.com/cuda.driver.major": "470", "nvidia.com/cuda.driver.minor": "57",
                     "nvidia.com/cuda.driver.rev": "02"})  # fmt: skip
    assert labelled_driver(old) == "470.57.02"
    assert labelled_driver(CPU) == ""
