"""GPU scheduling conformance: device-plugin requests land on matching nodes and see exactly their GPUs, pods without
a request see none, pods on one node cannot reach each other's GPUs, over-asks stay Pending with the scheduler's
reason, product labels tell the truth, DRA claims work where DRA is served, and GPU sharing is reported.

On emulated GPU nodes (a cluster spec) the scheduler and the emulated device plugin are real and the devices each
pod lists come from that plugin's allocation; every number recorded there is labelled emulated.
"""

from __future__ import annotations

import pytest

from harness.catalog.spec import load_workload
from harness.cluster.namespaces import run_labels
from harness.errors import WorkloadFailed
from harness.fixture_types import (
    Capabilities,
    HarnessConfig,
    NodeInfo,
    Profile,
    RunContext,
    RunResult,
    RunWorkload,
    Target,
    TestRecord,
)
from harness.measurement import Measurement
from harness.parsers.cuda import DeviceProbe, parse_device_probe
from harness.probes.accelerators import (
    accelerator_of,
    gpu_device_classes,
    gpu_node_for,
    gpu_sharing,
    isolation_problem,
    placement_for,
    product_matches,
    profile_gpu_mismatch,
)
from harness.probes.accelerators import dra_probe as dra_probe_rendered
from harness.runners import registry

pytestmark = [pytest.mark.compute, pytest.mark.conformance]

HOLD_S = 15  # isolation probes keep their GPU this long, so two pods started together hold theirs at once


def _probes(result: RunResult) -> dict[str, DeviceProbe]:
    """Pod name -> what its probe container listed."""
    return {key.split("/", 1)[0]: parse_device_probe(text) for key, text in result.logs.items()}


def _seen(probe: DeviceProbe, node: str, emulated: bool, **labels: str) -> Measurement:
    return Measurement(
        metric="devices_visible",
        value=probe.device_count,
        unit="count",
        labels={"node": node, **labels},
        emulated=emulated,
    )


def _runtime_note(capabilities: Capabilities, node: str) -> str:
    info = next((n for n in capabilities.nodes if n.name == node), None)
    if capabilities.embedded and info is not None and not info.emulated:
        return (
            "; this node is the embedded target's host, whose process runtime isolates GPUs by "
            "CUDA_VISIBLE_DEVICES/NVIDIA_VISIBLE_DEVICES only (nvidia-smi still reaches every host GPU)"
        )
    return ""


@pytest.mark.gpu
@pytest.mark.conformance_requirement("secure_accelerator_access")
def test_gpu_request_sees_exactly_the_requested_gpus(
    capabilities: Capabilities, run_workload: RunWorkload, record: TestRecord
) -> None:
    """A pod with nvidia.com/gpu: N in its limits and a nodeSelector on the GPU product label lands on a node with
    that label and lists exactly N GPUs (nvidia-smi -L inside the pod)."""
    node = gpu_node_for(capabilities, min_gpus=1, exclusive=True) or gpu_node_for(capabilities)
    assert node is not None, f"no ready GPU node (GPU nodes: {[n.name for n in capabilities.gpu_nodes]})"
    # two whole GPUs where possible; one replica on a time-sliced node (two replicas may be the same GPU)
    want = 1 if gpu_sharing(node).shared else min(2, node.gpus)
    placement = placement_for(node)
    result = run_workload("gpu-device-probe", gpus=str(want), **placement.params())
    ran_on = result.node_of("probe")
    probe = next(iter(_probes(result).values()))
    record.add(measurements=[_seen(probe, ran_on, result.emulated, requested=str(want))])
    landed = next((n for n in capabilities.nodes if n.name == ran_on), None)
    assert landed is not None, f"the probe pod ran on {ran_on!r}, which is not a known node"
    wrong = {k: v for k, v in placement.node_selector.items() if landed.labels.get(k) != v}
    assert not wrong, f"pod landed on {ran_on}, whose labels do not match the selector {wrong}"
    assert probe.device_count == want, (
        f"pod requested {want} GPU(s) on {ran_on} and can reach {probe.device_count}: {probe.describe()}"
        + _runtime_note(capabilities, ran_on)
    )


@pytest.mark.gpu
@pytest.mark.conformance_requirement("secure_accelerator_access")
def test_pod_without_gpu_request_sees_no_gpu(
    capabilities: Capabilities, run_workload: RunWorkload, record: TestRecord
) -> None:
    """A pod with no GPU request, placed on a GPU node in the CUDA image (NVIDIA_VISIBLE_DEVICES=all), reaches no
    GPU: device access is mediated by the device plugin, not by an environment variable."""
    node = gpu_node_for(capabilities)
    assert node is not None, "no ready GPU node"
    result = run_workload("gpu-no-request", **placement_for(node, pin_node=True).params())
    ran_on = result.node_of("probe")
    probe = next(iter(_probes(result).values()))
    record.add(measurements=[_seen(probe, ran_on, result.emulated, requested="0")])
    assert probe.device_count == 0 and not probe.dev_nodes, (
        f"pod without a GPU request on {ran_on} can reach {probe.device_count} GPU(s) "
        f"(nvidia-smi -L: {probe.describe()}; device nodes: {' '.join(probe.dev_nodes) or 'none'}; "
        f"NVIDIA_VISIBLE_DEVICES={probe.env.get('NVIDIA_VISIBLE_DEVICES', '<unset>')})"
        + _runtime_note(capabilities, ran_on)
    )


@pytest.mark.gpu
@pytest.mark.requires("gpus>=2")
@pytest.mark.conformance_requirement("secure_accelerator_access")
def test_pods_on_one_node_cannot_reach_each_others_gpus(
    capabilities: Capabilities, run_workload: RunWorkload, record: TestRecord
) -> None:
    """Two pods asking for one GPU each on the same node get different GPUs, and neither can reach the other's."""
    node = gpu_node_for(capabilities, min_gpus=2, exclusive=True)
    if node is None:
        pytest.skip("every GPU node with 2+ GPUs time-slices them (nvidia.com/gpu.replicas > 1): pods share by design")
    placement = placement_for(node, pin_node=True)
    result = run_workload("gpu-device-probe", gpus="1", replicas="2", hold_s=str(HOLD_S), **placement.params())
    probes = _probes(result)
    record.add(
        measurements=[_seen(p, node.name, result.emulated, pod=pod, requested="1") for pod, p in sorted(probes.items())]
    )
    assert len(probes) == 2, f"expected 2 probe pods on {node.name}, got {sorted(probes)}"
    for pod, probe in probes.items():
        assert probe.device_count == 1, (
            f"pod {pod} asked for 1 GPU and can reach {probe.device_count}: {probe.describe()}"
        )
    problem = isolation_problem(probes, gpu_sharing(node))
    assert problem is None, problem + _runtime_note(capabilities, node.name)


@pytest.mark.gpu
def test_gpu_request_beyond_allocatable_stays_pending(
    capabilities: Capabilities, run_workload: RunWorkload, record: TestRecord
) -> None:
    """A pod asking for more GPUs than any node can allocate is not placed: it stays Pending and the scheduler says
    Insufficient nvidia.com/gpu (checked from its PodScheduled condition at once, not waited out)."""
    most = max(n.gpus for n in capabilities.gpu_nodes)
    node = gpu_node_for(capabilities, min_gpus=most)
    assert node is not None
    placement = placement_for(node)
    with pytest.raises(WorkloadFailed) as failed:
        run_workload("gpu-device-probe", gpus=str(most + 1), **placement.params())
    message = str(failed.value)
    record.add(
        measurements=[
            Measurement(metric="gpus_requested", value=most + 1, unit="count", labels={"max_allocatable": str(most)})
        ]
    )
    assert "Unschedulable" in message and "Insufficient nvidia.com/gpu" in message, (
        f"a request for {most + 1} GPUs (most allocatable on one node: {most}) did not fail as Unschedulable with "
        f"'Insufficient nvidia.com/gpu': {message}"
    )


@pytest.mark.gpu
def test_gpu_product_label_matches_what_the_pod_reports(
    gpu_product: NodeInfo | None, capabilities: Capabilities, run_workload: RunWorkload, record: TestRecord
) -> None:
    """On a node of each GPU product, the name nvidia-smi reports inside a pod matches the node's
    nvidia.com/gpu.product label (GPU Feature Discovery), so product selectors pick what they say."""
    if gpu_product is None:
        pytest.skip("no ready node with allocatable nvidia.com/gpu")
    node, label = gpu_product, accelerator_of(gpu_product)
    result = run_workload("gpu-device-probe", gpus="1", **placement_for(node, pin_node=True).params())
    probe = next(iter(_probes(result).values()))
    record.add(measurements=[_seen(probe, node.name, result.emulated, product_label=label)])
    assert probe.products, f"{node.name} ({label}): the pod listed no GPU ({probe.describe()})"
    wrong = [name for name in probe.products if not product_matches(label, name)]
    assert not wrong, (
        f"GPU product label does not match the device on {node.name}: "
        f"label {label!r}, the pod reports {', '.join(wrong)}"
    )


def test_profile_gpu_product_matches_the_target(
    capabilities: Capabilities, profile: Profile, record: TestRecord
) -> None:
    """The threshold profile in use describes this target's GPUs (a wrong --profile would judge A100s by H100 bars)."""
    record.add(params={"profile": profile.name, "gpu_products": ", ".join(sorted(capabilities.gpu_products))})
    if profile.match is None or profile.match.gpu_product_regex is None:
        pytest.skip(f"profile {profile.name} names no GPU product: nothing to compare")
    mismatch = profile_gpu_mismatch(profile, capabilities)
    assert mismatch is None, mismatch


@pytest.mark.requires("dra")
@pytest.mark.conformance_requirement("dra_support")
def test_gpu_through_a_dra_resource_claim(
    request: pytest.FixtureRequest,
    target: Target,
    namespace: str,
    harness_config: HarnessConfig,
    capabilities: Capabilities,
    record: TestRecord,
) -> None:
    """With DRA served and a DeviceClass for NVIDIA GPUs, a pod whose ResourceClaimTemplate asks for one GPU of that
    class is allocated one and lists exactly that GPU."""
    classes = gpu_device_classes(target)
    if not classes:
        pytest.skip(
            "resource.k8s.io is served but no DeviceClass selects gpu.nvidia.com devices (no NVIDIA DRA driver)"
        )
    device_class, version = classes[0]
    spec = load_workload("gpu-device-probe")
    rendered = dra_probe_rendered(spec, device_class=device_class, api_version=version, count=1)
    record.add(workload="gpu-device-probe", params={"device_class": device_class, "resource_api": version})
    run = RunContext(
        cluster=target,
        namespace=namespace,
        labels=run_labels(harness_config.run_id, request.node.nodeid, workload=spec.name),
        timeout_s=harness_config.timeout(spec.timeout_s),
    )
    result = registry.run_workload(spec, rendered, run)
    probe = next(iter(_probes(result).values()))
    record.add(measurements=[_seen(probe, result.node_of("probe"), result.emulated, claim=device_class)])
    assert probe.device_count == 1, f"the claim for 1 device of {device_class} gave the pod {probe.describe()}"


@pytest.mark.gpu
@pytest.mark.conformance_requirement("gpu_sharing")
def test_gpu_sharing_is_reported_and_honoured(
    shared_gpu_node: NodeInfo | None, capabilities: Capabilities, run_workload: RunWorkload, record: TestRecord
) -> None:
    """Where MIG or time-slicing is configured, the node reports it (GFD labels, MIG resources) and a pod that asks
    for one shared unit gets exactly one: a MIG instance of the requested profile, or one replica of a GPU."""
    if shared_gpu_node is None:
        pytest.skip("no GPU node advertises MIG instances or time-slicing replicas: GPU sharing is not configured")
    node, sharing = shared_gpu_node, gpu_sharing(shared_gpu_node)
    record.add(params={node.name: sharing.describe()})
    placement = placement_for(node, pin_node=True)
    if sharing.mig_resources:
        resource = sorted(sharing.mig_resources)[0]
        result = run_workload("gpu-device-probe", gpus="1", resource=resource, **placement.params())
        probe = next(iter(_probes(result).values()))
        record.add(measurements=[_seen(probe, node.name, result.emulated, resource=resource)])
        profile = resource.removeprefix("nvidia.com/mig-")
        migs = [m for g in probe.gpus for m in g.mig_devices]
        listed = ", ".join(f"{m.profile} {m.uuid}" for m in migs) or "no MIG instance"
        assert len(migs) == 1 and migs[0].profile == profile, (
            f"{node.name}: asked for 1 {resource}, the pod lists {probe.describe()} ({listed})"
        )
        return
    replicas = min(sharing.replicas, 2)
    result = run_workload("gpu-device-probe", gpus="1", replicas=str(replicas), **placement.params())
    probes = _probes(result)
    replicas_seen = Measurement(
        metric="gpu_replicas",
        value=sharing.replicas,
        unit="count",
        labels={"node": node.name},
        emulated=result.emulated,
    )
    record.add(
        measurements=[
            replicas_seen,
            *(_seen(p, node.name, result.emulated, pod=pod) for pod, p in sorted(probes.items())),
        ]
    )
    wrong = [f"{pod}: {p.describe()}" for pod, p in probes.items() if p.device_count != 1]
    assert len(probes) == replicas and not wrong, (
        f"{node.name} ({sharing.describe()}): each of {replicas} pods must see one GPU; " + "; ".join(wrong)
    )


@pytest.mark.gpu
def test_gpu_nodes_carry_product_labels(capabilities: Capabilities, record: TestRecord) -> None:
    """Every GPU node carries a product label (GPU Feature Discovery's nvidia.com/gpu.product or GKE's
    cloud.google.com/gke-accelerator), so workloads can select a GPU type at all."""
    unlabelled = [n.name for n in capabilities.gpu_nodes if accelerator_of(n) == "unlabelled NVIDIA GPU"]
    record.add(params={"gpu_products": ", ".join(sorted(capabilities.gpu_products))})
    assert not unlabelled, (
        f"GPU nodes without a product label: {', '.join(unlabelled)} (install GPU Feature Discovery / the GPU Operator)"
    )
