"""Accelerators as the cluster exposes them: node pools (CPU/GPU/TPU), how a pod reaches each pool, GPU sharing
modes, TPU slices and resource forms, and per-node GPU health read from what is already there.

Why here and not in the suites: the compute suite's questions ("which pool is this node in", "what must a pod
tolerate to land on it", "is this node's GPU healthy according to the operator") need node objects, labels and a
few reads; the suites only ask and judge. Everything here is **read-only** toward nodes: like NVIDIA's Cluster
Readiness Engine, the suite never cordons, taints or labels a node; it reads GPU Operator validator pods, node
conditions, device-plugin allocatable and Autopilot-style health labels when they exist.

Label vocabulary (as the components write them):

* GPU Feature Discovery: ``nvidia.com/gpu.product`` (product name, spaces as ``-``), ``nvidia.com/gpu.count``,
  ``nvidia.com/gpu.replicas`` and ``nvidia.com/gpu.sharing-strategy`` (time-slicing / mps),
  ``nvidia.com/mig.strategy`` (single / mixed), ``nvidia.com/mig.config.state``.
* GKE: ``cloud.google.com/gke-accelerator`` (GPU type), ``cloud.google.com/gke-tpu-accelerator`` and
  ``cloud.google.com/gke-tpu-topology`` (TPU slice), ``cloud.google.com/gke-nodepool``.
* IBM Autopilot: ``autopilot.ibm.com/gpuhealth`` = PASS / WARN / EVICT / TESTING.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.capabilities import GPU, LEGACY_TPU_PREFIX, TPU, Capabilities, NodeInfo
from harness.cluster.fields import labels_of, name_of, pod_spec, pod_status
from harness.cluster.forbidden import explain_forbidden
from harness.cluster.target import ClusterHandle
from harness.measurement import as_record

log = logging.getLogger(__name__)

PRODUCT_LABEL = "nvidia.com/gpu.product"
GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"
TPU_ACCELERATOR_LABEL = "cloud.google.com/gke-tpu-accelerator"
TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
REPLICAS_LABEL = "nvidia.com/gpu.replicas"
SHARING_LABEL = "nvidia.com/gpu.sharing-strategy"
MIG_STRATEGY_LABEL = "nvidia.com/mig.strategy"
MIG_STATE_LABEL = "nvidia.com/mig.config.state"
AUTOPILOT_HEALTH_LABEL = "autopilot.ibm.com/gpuhealth"
#: node-pool labels of the managed offerings and of the embedded target's cluster spec, most specific first
POOL_LABELS = (
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "karpenter.sh/nodepool",
    "kubernetes.azure.com/agentpool",
    "agentpool",
    "aibench.io/node-pool",
)
#: taint effects that keep a pod without a matching toleration off a node (PreferNoSchedule only discourages)
RESERVING_EFFECTS = ("NoSchedule", "NoExecute")
_MIG_RESOURCE = re.compile(r"^nvidia\.com/mig-(?P<profile>\d+g\.\d+gb(?:\+me)?)$")
_TOPOLOGY = re.compile(r"^\d+(?:x\d+)*$")

PoolKind = Literal["cpu", "gpu", "tpu"]


# ----------------------------------------------------------------------------------------------------- node pools
def accelerator_kind(node: NodeInfo) -> PoolKind:
    """gpu when the node advertises NVIDIA GPUs or MIG instances, tpu for TPU chips, else cpu."""
    if node.gpus > 0 or mig_resources(node):
        return "gpu"
    if node.tpus > 0:
        return "tpu"
    return "cpu"


def mig_resources(node: NodeInfo) -> dict[str, int]:
    """MIG instances advertised under the mixed strategy: ``nvidia.com/mig-1g.10gb`` -> count."""
    return {r: node.count(r) for r in node.allocatable if _MIG_RESOURCE.match(r) and node.count(r) > 0}


def pool_name(labels: Mapping[str, str], kind: str, product: str) -> str:
    """A node's pool: its managed node-pool label, else its kind and accelerator (``gpu:NVIDIA-H100-80GB-HBM3``),
    else its kind. One naming for the inventory and the capacity panel."""
    for label in POOL_LABELS:
        if labels.get(label):
            return labels[label]
    return f"{kind}:{product}" if product else kind


def _pool_name(node: NodeInfo, kind: PoolKind) -> str:
    return pool_name(node.labels, kind, accelerator_of(node))


def accelerator_of(node: NodeInfo) -> str:
    """The node's accelerator as labelled: GPU product (GFD, else GKE's label) or TPU type and topology."""
    kind = accelerator_kind(node)
    if kind == "gpu":
        return node.labels.get(PRODUCT_LABEL) or node.labels.get(GKE_GPU_LABEL) or "unlabelled NVIDIA GPU"
    if kind == "tpu":
        accel = node.labels.get(TPU_ACCELERATOR_LABEL, "")
        topology = node.labels.get(TPU_TOPOLOGY_LABEL, "")
        return f"{accel} {topology}".strip() or "unlabelled TPU"
    return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePool:
    """Nodes of one pool: same kind and pool label (or, without pool labels, the same accelerator)."""

    name: str
    kind: PoolKind
    accelerator: str
    nodes: tuple[str, ...]
    ready: int
    emulated: int
    devices_per_node: int
    taints: tuple[str, ...]

    @property
    def reserved(self) -> bool:
        """Tainted NoSchedule/NoExecute: only pods that tolerate it (accelerator pods) land here."""
        return any(t.rpartition(":")[2] in RESERVING_EFFECTS for t in self.taints)

    def to_dict(self) -> dict[str, Any]:
        return as_record(self)


def _taint_text(taint: Mapping[str, str]) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint['key']}{value}:{taint['effect']}"


def node_pools(capabilities: Capabilities) -> tuple[NodePool, ...]:
    """Every node grouped into pools, CPU pools first, then GPU, then TPU (the report's inventory table)."""
    groups: dict[tuple[PoolKind, str], list[NodeInfo]] = {}
    for node in capabilities.nodes:
        kind = accelerator_kind(node)
        groups.setdefault((kind, _pool_name(node, kind)), []).append(node)
    order = {"cpu": 0, "gpu": 1, "tpu": 2}
    pools = []
    for (kind, name), nodes in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        devices = max(
            (n.gpus + sum(mig_resources(n).values()) if kind == "gpu" else n.tpus if kind == "tpu" else 0)
            for n in nodes
        )
        taints = sorted({_taint_text(t) for n in nodes for t in n.taints})
        pools.append(
            NodePool(
                name=name,
                kind=kind,
                accelerator=accelerator_of(nodes[0]),
                nodes=tuple(n.name for n in nodes),
                ready=sum(n.ready for n in nodes),
                emulated=sum(n.emulated for n in nodes),
                devices_per_node=devices,
                taints=tuple(taints),
            )
        )
    return tuple(pools)


# ------------------------------------------------------------------------------------------------------ placement
@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """How a pod reaches one node's pool: the node selector and the tolerations for the pool's taints."""

    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping[str, str], ...] = ()

    def params(self) -> dict[str, str]:
        """Workload parameters (JSON flow values the manifests embed as ``nodeSelector: ${node_selector}``)."""
        return {
            "node_selector": json.dumps(dict(self.node_selector), sort_keys=True),
            "tolerations": json.dumps([dict(t) for t in self.tolerations]),
        }

    def affinity_params(self) -> dict[str, str]:
        """The same placement as a required node affinity (``affinity: ${affinity}``), the form schedulers and
        admission webhooks (GKE's ComputeClasses, Kueue's ResourceFlavors) often write instead of a nodeSelector."""
        expressions = [{"key": k, "operator": "In", "values": [v]} for k, v in sorted(self.node_selector.items())]
        required = {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
        return {
            "node_selector": "{}",
            "affinity": json.dumps({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}),
            "tolerations": json.dumps([dict(t) for t in self.tolerations]),
        }


def tolerations_for(node: NodeInfo) -> tuple[dict[str, str], ...]:
    """Tolerations for each NoSchedule/NoExecute taint of ``node`` (exact key, value and effect)."""
    out = []
    for taint in node.taints:
        if taint.get("effect") not in RESERVING_EFFECTS:
            continue
        toleration = {"key": taint["key"], "effect": taint["effect"]}
        if taint.get("value"):
            toleration.update(operator="Equal", value=taint["value"])
        else:
            toleration["operator"] = "Exists"
        out.append(toleration)
    return tuple(out)


def placement_for(node: NodeInfo, *, pin_node: bool = False) -> Placement:
    """Select ``node``'s accelerator label (the way a user targets a GPU type or TPU slice) and tolerate its taints;
    ``pin_node`` adds ``kubernetes.io/hostname`` (two pods that must share one node)."""
    kind = accelerator_kind(node)
    selector: dict[str, str] = {}
    if kind == "gpu":
        for label in (PRODUCT_LABEL, GKE_GPU_LABEL):
            if node.labels.get(label):
                selector[label] = node.labels[label]
                break
    elif kind == "tpu":
        for label in (TPU_ACCELERATOR_LABEL, TPU_TOPOLOGY_LABEL):
            if node.labels.get(label):
                selector[label] = node.labels[label]
    if pin_node or not selector:
        selector["kubernetes.io/hostname"] = node.labels.get("kubernetes.io/hostname", node.name)
    return Placement(node_selector=selector, tolerations=tolerations_for(node))


def cpu_pod_lands_on(node: NodeInfo) -> bool:
    """Whether a pod with no tolerations and no accelerator request may be placed on ``node`` at all."""
    return node.ready and not any(t.get("effect") in RESERVING_EFFECTS for t in node.taints)


# -------------------------------------------------------------------------------------------------------- products
def _normalise(product: str) -> str:
    return re.sub(r"[\s_-]+", "-", product.strip()).lower()


def product_matches(label: str, reported: str) -> bool:
    """GFD's product label vs the name nvidia-smi/NVML reports: GFD writes the name with spaces as ``-``."""
    return bool(label) and _normalise(label) == _normalise(reported)


def profile_gpu_mismatch(profile: Any, capabilities: Capabilities) -> str | None:
    """Why the chosen profile's GPU conditions do not describe this target (None when they do, or it has none).

    A profile chosen with ``--profile h100-...`` on an A100 cluster would judge A100s against H100 bars; the
    mismatch is named so the failure says "wrong profile", not "slow GPU"."""
    match = getattr(profile, "match", None)
    if match is None or match.gpu_product_regex is None:
        return None
    products = sorted(capabilities.gpu_products)
    if not products:
        return f"profile {profile.name} is for GPUs matching {match.gpu_product_regex!r}, the target has no GPU"
    wrong = [p for p in products if not re.search(match.gpu_product_regex, p)]
    if not wrong:
        return None
    return (
        f"profile {profile.name} expects GPU products matching {match.gpu_product_regex!r}, "
        f"the target's GPU nodes report {', '.join(wrong)}"
    )


# --------------------------------------------------------------------------------------------------------- sharing
@dataclass(frozen=True, slots=True, kw_only=True)
class Sharing:
    """How a GPU node shares its GPUs, from GFD labels and advertised resources."""

    strategy: str  # none | time-slicing | mps | mig-single | mig-mixed
    replicas: int = 1
    physical_gpus: int = 0
    mig_resources: Mapping[str, int] = field(default_factory=dict)

    @property
    def shared(self) -> bool:
        """Several pods may get the same physical GPU (time-slicing/MPS), so disjointness is not expected."""
        return self.strategy in ("time-slicing", "mps") and self.replicas > 1

    def describe(self) -> str:
        if self.strategy in ("time-slicing", "mps"):
            return f"{self.strategy}: {self.physical_gpus} GPU(s) x {self.replicas} replicas"
        if self.strategy.startswith("mig"):
            parts = ", ".join(f"{k.removeprefix('nvidia.com/')}={v}" for k, v in sorted(self.mig_resources.items()))
            return f"{self.strategy}" + (f": {parts}" if parts else "")
        return "none (whole GPUs)"


def gpu_sharing(node: NodeInfo) -> Sharing:
    labels = node.labels
    try:
        replicas = max(1, int(labels.get(REPLICAS_LABEL, "1")))
    except ValueError:
        replicas = 1
    strategy = labels.get(SHARING_LABEL, "")
    migs = mig_resources(node)
    mig_strategy = labels.get(MIG_STRATEGY_LABEL, "")
    try:
        physical = int(labels.get("nvidia.com/gpu.count", "0")) or node.gpus // replicas
    except ValueError:
        physical = node.gpus // replicas
    if migs or (mig_strategy in ("single", "mixed") and labels.get(MIG_STATE_LABEL) == "success"):
        return Sharing(strategy=f"mig-{mig_strategy or 'mixed'}", physical_gpus=physical, mig_resources=migs)
    if replicas > 1:
        return Sharing(strategy=strategy or "time-slicing", replicas=replicas, physical_gpus=physical)
    return Sharing(strategy="none", physical_gpus=node.gpus)


# ------------------------------------------------------------------------------------------------------------ TPUs
@dataclass(frozen=True, slots=True, kw_only=True)
class TpuSlice:
    """One TPU node pool's slice shape: accelerator type, topology, chips per host and hosts per slice."""

    accelerator: str
    topology: str
    resource: str
    chips_per_host: int
    nodes: tuple[str, ...]
    deprecated: str = ""

    @property
    def chips(self) -> int:
        """Chips in the slice, from the topology (``2x4`` -> 8); the per-host count when no topology label."""
        if _TOPOLOGY.match(self.topology):
            return math.prod(int(d) for d in self.topology.split("x"))
        return self.chips_per_host

    @property
    def hosts(self) -> int:
        return max(1, self.chips // max(1, self.chips_per_host))

    @property
    def multi_host(self) -> bool:
        return self.hosts > 1


def tpu_resource(node: NodeInfo) -> tuple[str, str]:
    """(resource name, deprecation note) for the TPU chips ``node`` advertises.

    ``google.com/tpu`` is the GKE form; ``cloud-tpus.google.com/v2``/``v3`` (and ``preemptible-v*``) is the
    legacy TPU-as-a-service form of the first Kubernetes TPU integration, removed when Cloud TPU Nodes were
    retired: still usable where advertised, reported as deprecated."""
    if node.count(TPU) > 0:
        return TPU, ""
    legacy = sorted(r for r in node.allocatable if r.startswith(LEGACY_TPU_PREFIX) and node.count(r) > 0)
    if legacy:
        return legacy[0], (
            f"node {node.name} advertises the legacy {legacy[0]} resource (Cloud TPU Nodes, deprecated); "
            f"GKE TPU VMs use {TPU} with {TPU_ACCELERATOR_LABEL}/{TPU_TOPOLOGY_LABEL} node selectors"
        )
    return TPU, ""


def tpu_slices(capabilities: Capabilities) -> tuple[TpuSlice, ...]:
    """One entry per (accelerator, topology, resource) among the TPU nodes."""
    groups: dict[tuple[str, str, str], list[NodeInfo]] = {}
    notes: dict[tuple[str, str, str], str] = {}
    for node in capabilities.tpu_nodes:
        resource, note = tpu_resource(node)
        key = (node.labels.get(TPU_ACCELERATOR_LABEL, ""), node.labels.get(TPU_TOPOLOGY_LABEL, ""), resource)
        groups.setdefault(key, []).append(node)
        notes[key] = notes.get(key) or note
    return tuple(
        TpuSlice(
            accelerator=accel,
            topology=topology,
            resource=resource,
            chips_per_host=max(n.count(resource) for n in nodes),
            nodes=tuple(n.name for n in nodes),
            deprecated=notes[(accel, topology, resource)],
        )
        for (accel, topology, resource), nodes in sorted(groups.items())
    )


# ---------------------------------------------------------------------------------------------------- GPU health
HealthStatus = Literal["healthy", "degraded", "unhealthy", "unknown"]
_VALIDATOR_SELECTOR = "app=nvidia-operator-validator"
#: node conditions that mean the node is in trouble when True (node-problem-detector and kubelet pressure)
_BAD_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeHealth:
    """What the cluster already says about one GPU node's health, and which signals were there to read."""

    node: str
    status: HealthStatus
    reasons: tuple[str, ...] = ()
    signals: Mapping[str, str] = field(default_factory=dict)


def _validator_pods(api_client: client.ApiClient) -> dict[str, list[client.V1Pod]] | None:
    """GPU Operator validator pods by node; None when they cannot be listed (RBAC) or none exist."""
    try:
        pods = client.CoreV1Api(api_client).list_pod_for_all_namespaces(label_selector=_VALIDATOR_SELECTOR).items
    except ApiException as exc:
        if exc.status in (403, 404):
            level = logging.WARNING if exc.status == 403 else logging.INFO
            log.log(level, "gpu health: cannot list validator pods (%s)", explain_forbidden(exc) or exc.status)
            return None
        raise
    by_node: dict[str, list[client.V1Pod]] = {}
    for pod in pods:
        by_node.setdefault(pod_spec(pod).node_name or "", []).append(pod)
    return by_node or None


def node_health(node: client.V1Node, validators: Mapping[str, Sequence[client.V1Pod]] | None) -> NodeHealth:
    """One GPU node's health from its conditions, device-plugin counts, Autopilot label and validator pod."""
    name = name_of(node)
    labels = labels_of(node)
    node_status = node.status or client.V1NodeStatus()
    signals: dict[str, str] = {}
    bad: list[str] = []
    warn: list[str] = []
    conditions = {c.type: c for c in node_status.conditions or []}
    ready = conditions.get("Ready")
    signals["Ready"] = ready.status if ready else "missing"
    if ready is None or ready.status != "True":
        bad.append(f"node not Ready ({ready.reason if ready else 'no Ready condition'})")
    for ctype, cond in conditions.items():
        if ctype in _BAD_CONDITIONS and cond.status == "True":
            signals[ctype] = "True"
            bad.append(f"{ctype}: {cond.message or cond.reason or 'True'}")
        elif ctype not in ("Ready", *_BAD_CONDITIONS) and "gpu" in ctype.lower():
            signals[ctype] = cond.status  # node-problem-detector GPU conditions (e.g. GpuUnhealthy)
            if cond.status == "True":
                bad.append(f"{ctype}: {cond.message or cond.reason or 'True'}")
    capacity = int((node_status.capacity or {}).get(GPU, "0") or 0)
    allocatable = int((node_status.allocatable or {}).get(GPU, "0") or 0)
    if capacity:
        signals["device-plugin"] = f"{allocatable}/{capacity} allocatable"
        if allocatable < capacity:
            warn.append(f"device plugin reports {capacity - allocatable} of {capacity} GPU(s) unhealthy")
    autopilot = labels.get(AUTOPILOT_HEALTH_LABEL)
    if autopilot:
        signals[AUTOPILOT_HEALTH_LABEL] = autopilot
        if autopilot == "EVICT":
            bad.append(f"{AUTOPILOT_HEALTH_LABEL}=EVICT (a fatal DCGM category failed)")
        elif autopilot in ("WARN", "TESTING"):
            warn.append(f"{AUTOPILOT_HEALTH_LABEL}={autopilot}")
    if validators is not None:
        pods = validators.get(name, [])
        if not pods:
            signals["operator-validator"] = "absent"
            warn.append("no nvidia-operator-validator pod on this node")
        else:
            pod = pods[0]
            phase = pod_status(pod).phase
            ok = phase == "Running" and all(cs.ready for cs in pod_status(pod).container_statuses or [])
            signals["operator-validator"] = "ready" if ok else (phase or "Unknown")
            if not ok:
                bad.append(f"nvidia-operator-validator {name_of(pod)} is {phase}, not ready")
    if bad:
        status: HealthStatus = "unhealthy"
    elif warn:
        status = "degraded"
    elif len(signals) <= 1 and validators is None and not autopilot:
        status = "healthy" if signals.get("Ready") == "True" and capacity else "unknown"
    else:
        status = "healthy"
    return NodeHealth(node=name, status=status, reasons=tuple(bad + warn), signals=signals)


def gpu_health(cluster: ClusterHandle, gpu_nodes: Iterable[str]) -> tuple[NodeHealth, ...]:
    """Health of each named GPU node, read-only (node objects and validator pods)."""
    wanted = set(gpu_nodes)
    nodes = [n for n in client.CoreV1Api(cluster.api_client).list_node().items if name_of(n) in wanted]
    validators = _validator_pods(cluster.api_client)
    return tuple(node_health(n, validators) for n in sorted(nodes, key=name_of))


# ----------------------------------------------------------------------------------------------------------- DRA
GPU_DRA_DRIVER = "gpu.nvidia.com"


def gpu_device_classes(cluster: ClusterHandle) -> tuple[tuple[str, str], ...]:
    """(DeviceClass name, served resource.k8s.io version) of classes selecting NVIDIA GPUs (by the driver name in
    their CEL selectors, or ``gpu.nvidia.com`` in the class name, as the NVIDIA DRA driver installs them)."""
    api_client = cluster.api_client
    custom = client.CustomObjectsApi(api_client)
    groups = {g.name: [v.version for v in g.versions] for g in client.ApisApi(api_client).get_api_versions().groups}
    for version in groups.get("resource.k8s.io", []):
        try:
            listing = cast(
                "dict[str, Any]", custom.list_cluster_custom_object("resource.k8s.io", version, "deviceclasses")
            )
        except ApiException as exc:
            if exc.status == 403:
                log.warning("DRA: cannot list deviceclasses %s: %s", version, explain_forbidden(exc) or exc.reason)
            if exc.status in (403, 404):
                continue
            raise
        found = []
        for item in listing.get("items", []):
            name = item["metadata"]["name"]
            text = json.dumps(item.get("spec", {}))
            if GPU_DRA_DRIVER in name or f"'{GPU_DRA_DRIVER}'" in text or f'\\"{GPU_DRA_DRIVER}\\"' in text:
                found.append((name, version))
        return tuple(found)
    return ()


# ------------------------------------------------------------------------------------------------ node selection
def measurement_nodes(capabilities: Capabilities, nodes: Sequence[NodeInfo]) -> list[NodeInfo]:
    """The accelerator nodes a *measuring* workload may use: real ones when the target has any real node (the
    harness keeps measurements off emulated nodes then), else all (an emulated-only target, results emulated)."""
    if any(not n.emulated for n in capabilities.nodes):
        return [n for n in nodes if not n.emulated]
    return list(nodes)


def gpu_node_for(
    capabilities: Capabilities, *, min_gpus: int = 1, exclusive: bool = False, measuring: bool = False
) -> NodeInfo | None:
    """A ready GPU node with at least ``min_gpus`` allocatable GPUs: the one with the most GPUs, by name.
    ``exclusive`` skips time-sliced/MPS nodes (whose pods share GPUs by design); ``measuring`` keeps to nodes a
    measuring workload may use (:func:`measurement_nodes`)."""
    nodes = [n for n in capabilities.gpu_nodes if n.ready and n.gpus >= min_gpus]
    if exclusive:
        nodes = [n for n in nodes if not gpu_sharing(n).shared]
    if measuring:
        nodes = measurement_nodes(capabilities, nodes)
    return min(nodes, key=lambda n: (-n.gpus, n.name), default=None)


def nodes_by_product(capabilities: Capabilities, *, measuring: bool = False) -> dict[str, NodeInfo]:
    """One ready node per GPU product label (the first by name), for per-product checks and benchmarks."""
    nodes = [n for n in capabilities.gpu_nodes if n.ready and n.gpus > 0]
    if measuring:
        nodes = measurement_nodes(capabilities, nodes)
    out: dict[str, NodeInfo] = {}
    for node in sorted(nodes, key=lambda n: n.name):
        out.setdefault(accelerator_of(node), node)
    return out


def isolation_problem(probes: Mapping[str, Any], sharing: Sharing) -> str | None:
    """Why pods on one node are not shown isolated from each other's GPUs: two pods that held devices at the same
    time list the same device (unless the node time-slices its GPUs, where sharing is the design), or the pods
    never held their devices at the same time, so isolation was not exercised (a GPU freed by a finished pod is
    rightly handed to the next). ``probes`` maps pod name -> :class:`harness.parsers.cuda.DeviceProbe`."""
    pods = sorted(probes)
    for i, first in enumerate(pods):
        for second in pods[i + 1 :]:
            a, b = probes[first], probes[second]
            if a.window and b.window and (a.window[1] < b.window[0] or b.window[1] < a.window[0]):
                return (
                    f"pods {first} and {second} did not hold their GPUs at the same time "
                    f"({a.window[0]:.0f}-{a.window[1]:.0f} vs {b.window[0]:.0f}-{b.window[1]:.0f}): isolation was "
                    "not exercised; raise hold_s"
                )
            shared = sorted(set(a.uuids) & set(b.uuids))
            if shared and not sharing.shared:
                return (
                    f"pods {first} and {second} can both reach {shared[0]} "
                    f"({first}: {a.describe()}; {second}: {b.describe()})"
                )
    return None


def dra_claim_template(name: str, *, device_class: str, api_version: str, count: int) -> dict[str, Any]:
    """A ResourceClaimTemplate asking for ``count`` devices of ``device_class`` in the schema of ``api_version``
    (``v1alpha3``/``v1beta1`` name the class in the request; ``v1beta2``/``v1`` nest it under ``exactly``)."""
    request: dict[str, Any] = {"name": "gpu"}
    selection = {"deviceClassName": device_class, "allocationMode": "ExactCount", "count": count}
    if api_version in ("v1alpha3", "v1beta1"):
        request.update(selection)
    else:
        request["exactly"] = selection
    return {
        "apiVersion": f"resource.k8s.io/{api_version}",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {"spec": {"devices": {"requests": [request]}}},
    }


def dra_probe(spec: Any, *, device_class: str, api_version: str, count: int = 1) -> Any:
    """The gpu-device-probe workload rewritten to get its GPU through DRA: a ResourceClaimTemplate plus the Job
    with a pod-level ``resourceClaims`` entry and a container ``resources.claims`` reference instead of
    ``nvidia.com/gpu`` limits. Returns a :class:`~harness.catalog.render.Rendered` for the job runner."""
    from harness.catalog.render import Rendered, render
    from harness.runners.job import scripts_configmap_name

    base = render(spec, {"gpus": "0"}, context={"scripts_configmap": scripts_configmap_name(spec.name)})
    template = dra_claim_template("gpu-probe-claim", device_class=device_class, api_version=api_version, count=count)
    documents: list[dict[str, Any]] = [template]
    for original in base.documents:
        doc = json.loads(json.dumps(original))
        pod = doc["spec"]["template"]["spec"]
        pod["resourceClaims"] = [{"name": "gpu", "resourceClaimTemplateName": "gpu-probe-claim"}]
        for container in pod["containers"]:
            resources = container.setdefault("resources", {})
            resources.get("limits", {}).pop(GPU, None)
            resources["claims"] = [{"name": "gpu"}]
        documents.append(doc)
    return Rendered(
        documents=tuple(documents), scripts=base.scripts, params={**base.params, "device_class": device_class}
    )


def labelled_driver(node: NodeInfo) -> str:
    """The node's NVIDIA driver and the newest CUDA it supports, from GPU Feature Discovery labels
    (``nvidia.com/cuda.driver-version.full`` / ``cuda.runtime-version.full``, or the older ``cuda.driver.*``);
    empty when the node carries none."""
    labels = node.labels
    driver = labels.get("nvidia.com/cuda.driver-version.full") or ".".join(
        labels[k]
        for k in ("nvidia.com/cuda.driver.major", "nvidia.com/cuda.driver.minor", "nvidia.com/cuda.driver.rev")
        if labels.get(k)
    )
    cuda = labels.get("nvidia.com/cuda.runtime-version.full") or ".".join(
        labels[k] for k in ("nvidia.com/cuda.runtime.major", "nvidia.com/cuda.runtime.minor") if labels.get(k)
    )
    if driver and cuda:
        return f"{driver} (CUDA {cuda})"
    return driver
