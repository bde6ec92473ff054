"""What the target offers, discovered once per run (DESIGN.md section 1: capabilities).

Discovery uses only reads a least-privileged test account can do (list nodes, storage classes, kube-system
DaemonSets, Services, and API discovery), so it also works on managed clusters where CRDs cannot be listed.
``missing(requirement)`` turns a test's ``requires(...)`` marker into the exact sentence its skip shows.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.fields import annotations_of, labels_of, metadata, name_of
from harness.cluster.forbidden import explain_forbidden
from harness.labels import EMULATED, POD_NETWORK_ANNOTATION, SYSTEM_SERVICE_LABEL

log = logging.getLogger(__name__)

GPU = "nvidia.com/gpu"
TPU = "google.com/tpu"
LEGACY_TPU_PREFIX = "cloud-tpus.google.com/"
EMULATED_LABEL = EMULATED
# RDMA-capable network resources a pod can request: RDMA shared-device-plugin (rdma/*), NVIDIA network operator and
# SR-IOV NICs, and AWS EFA (vpc.amazonaws.com/efa, the EFA device plugin's resource; NCCL uses it through
# aws-ofi-nccl, "NET/AWS Libfabric").
_RDMA = re.compile(
    r"^(rdma/|nvidia\.com/(?!gpu$|mig-)|openshift\.io/|intel\.com/.*(sriov|vf|rdma)|mellanox\.com/|vpc\.amazonaws\.com/efa$)"
)

# API groups/resources whose presence means an add-on is installed: capability name -> (group, plural).
ADDONS: Mapping[str, tuple[str, str]] = {
    "istio": ("networking.istio.io", "virtualservices"),
    "gateway-api": ("gateway.networking.k8s.io", "httproutes"),
    "inference-extension": ("inference.networking.x-k8s.io", "inferencepools"),
    "mpijob": ("kubeflow.org", "mpijobs"),
    "kuberay": ("ray.io", "rayjobs"),
    "jobset": ("jobset.x-k8s.io", "jobsets"),
    "kueue": ("kueue.x-k8s.io", "clusterqueues"),
    "volcano": ("scheduling.volcano.sh", "podgroups"),
    "servicemonitor": ("monitoring.coreos.com", "servicemonitors"),
    "multus": ("k8s.cni.cncf.io", "network-attachment-definitions"),
    "dra": ("resource.k8s.io", "deviceclasses"),
}
_CNI_MARKERS = {
    "cilium": "cilium",
    "calico": "calico-node",
    "flannel": "flannel",
    "weave": "weave-net",
    "aws-vpc-cni": "aws-node",
    "azure-cni": "azure-cni",
    "antrea": "antrea-agent",
    "multus": "multus",
    "sriov-device-plugin": "sriov-device-plugin",
    "rdma-shared-device-plugin": "rdma-shared-dp",
    "gke-dataplane-v2": "anetd",
    "kube-ovn": "kube-ovn-cni",
    "ovn-kubernetes": "ovnkube-node",
    "kindnet": "kindnet",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str]
    allocatable: Mapping[str, str]
    taints: tuple[Mapping[str, str], ...]
    ready: bool
    emulated: bool

    def count(self, resource: str) -> int:
        try:
            return int(self.allocatable.get(resource, "0"))
        except ValueError:
            return 0

    @property
    def gpus(self) -> int:
        return self.count(GPU)

    @property
    def tpus(self) -> int:
        return self.count(TPU) + sum(self.count(r) for r in self.allocatable if r.startswith(LEGACY_TPU_PREFIX))

    @property
    def rdma_resources(self) -> dict[str, int]:
        return {r: self.count(r) for r in self.allocatable if _RDMA.match(r) and self.count(r) > 0}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRef:
    """Where a platform service answers, and what it is."""

    namespace: str
    name: str
    cluster_ip: str
    port: int
    description: str = ""

    @property
    def address(self) -> str:
        return f"{self.cluster_ip}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageClassInfo:
    name: str
    provisioner: str
    binding_mode: str
    default: bool
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """A snapshot of the target; frozen so every test sees the same one."""

    server_version: str
    embedded: bool
    nodes: tuple[NodeInfo, ...]
    api_groups: frozenset[str]
    addons: frozenset[str]
    storage_classes: tuple[StorageClassInfo, ...]
    cni: tuple[str, ...]
    prometheus: tuple[str, ...]  # "namespace/service:port"
    # Services labelled aibench.io/system-service (the embedded target's S3, Redis...): name -> ServiceRef
    system_services: Mapping[str, ServiceRef] = field(default_factory=dict)
    # how to install a missing system service, given by whoever started the target (the face, for the embedded one)
    service_hints: Mapping[str, str] = field(default_factory=dict)
    # monitoring components found by Service name/labels: kind -> ("namespace/service:port", ...)
    monitoring: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # add-ons whose API is served but whose agent is absent: name -> why they count as not installed
    addon_gaps: Mapping[str, str] = field(default_factory=dict)
    # what the node agent says about the pod network (Node annotation aibench.io/pod-network): mode "netns" (own
    # namespaces, NetworkPolicy, attachments) or "host" with the reason; empty when no node says anything
    pod_network: Mapping[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ derived facts
    @property
    def gpu_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.gpus > 0]

    @property
    def tpu_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.tpus > 0]

    @property
    def rdma_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.rdma_resources]

    @property
    def gpu_products(self) -> dict[str, int]:
        """GPU product label -> number of nodes carrying it."""
        products: dict[str, int] = {}
        for node in self.gpu_nodes:
            product = node.labels.get("nvidia.com/gpu.product", "unknown")
            products[product] = products.get(product, 0) + 1
        return products

    @property
    def accelerators(self) -> str:
        """One line for report headers: ``16x NVIDIA-H100-80GB-HBM3 on 2 nodes`` or ``none``."""
        parts = []
        for product, _ in sorted(self.gpu_products.items()):
            nodes = [n for n in self.gpu_nodes if n.labels.get("nvidia.com/gpu.product", "unknown") == product]
            parts.append(f"{sum(n.gpus for n in nodes)}x {product} on {len(nodes)} node(s)")
        if self.tpu_nodes:
            parts.append(f"{sum(n.tpus for n in self.tpu_nodes)} TPU chips on {len(self.tpu_nodes)} node(s)")
        return "; ".join(parts) or "none"

    def facts(self) -> dict[str, Any]:
        """Flat facts for profile matching."""
        gpu_nodes = self.gpu_nodes
        per_node = max((n.gpus for n in gpu_nodes), default=0)
        product = max(self.gpu_products.items(), key=lambda kv: kv[1])[0] if gpu_nodes else ""
        accelerator = "nvidia" if gpu_nodes else "tpu" if self.tpu_nodes else "none"
        tpu_type = next((n.labels.get("cloud.google.com/gke-tpu-accelerator", "") for n in self.tpu_nodes), "")
        return {
            "accelerator": accelerator,
            "gpu_product": product,
            "gpu_count_per_node": per_node,
            "tpu_type": tpu_type,
            "rdma": bool(self.rdma_nodes),
            "embedded": self.embedded,
            "node_count": len(self.nodes),
        }

    def to_dict(self) -> dict[str, Any]:
        """The snapshot recorded in run.json."""
        return {
            "server_version": self.server_version,
            "embedded": self.embedded,
            "accelerators": self.accelerators,
            "nodes": [
                {
                    "name": n.name,
                    "ready": n.ready,
                    "emulated": n.emulated,
                    "gpus": n.gpus,
                    "tpus": n.tpus,
                    "rdma": n.rdma_resources,
                    "labels": dict(n.labels),
                    "allocatable": dict(n.allocatable),
                    "taints": [dict(t) for t in n.taints],
                }
                for n in self.nodes
            ],
            "addons": sorted(self.addons),
            "addon_gaps": dict(self.addon_gaps),
            "pod_network": dict(self.pod_network),
            "cni": list(self.cni),
            "prometheus": list(self.prometheus),
            "monitoring": {k: list(v) for k, v in self.monitoring.items()},
            "system_services": {
                k: {"service": f"{v.namespace}/{v.name}", "address": v.address, "description": v.description}
                for k, v in self.system_services.items()
            },
            "storage_classes": [
                {"name": s.name, "provisioner": s.provisioner, "binding_mode": s.binding_mode, "default": s.default}
                for s in self.storage_classes
            ],
        }

    # ------------------------------------------------------------------ requirements
    def missing(self, requirement: str) -> str | None:
        """None when ``requirement`` is met, else the sentence a skip shows (what exactly the target lacks).

        Requirements: ``gpu``, ``gpus>=N`` (on one node), ``gpu-nodes>=N``, ``tpu``, ``rdma``, ``nodes>=N``,
        ``real-hardware`` (no emulated nodes involved), ``embedded``, ``storageclass``, ``prometheus``,
        ``cni:<name>``, ``api:<group>``, ``service:<name>`` (a labelled platform service such as s3 or redis),
        ``monitoring:<component>`` (a component of :data:`MONITORING_COMPONENTS`),
        and every add-on name in :data:`ADDONS`.
        """
        req = requirement.strip()
        names = ", ".join(n.name for n in self.nodes[:5]) + ("..." if len(self.nodes) > 5 else "")
        if req == "gpu":
            return None if self.gpu_nodes else f"no node has allocatable {GPU} (nodes: {names or 'none'})"
        if match := re.fullmatch(r"gpus>=(\d+)", req):
            want = int(match.group(1))
            best = max((n.gpus for n in self.nodes), default=0)
            return None if best >= want else f"no node has {want} allocatable {GPU} (most on one node: {best})"
        if match := re.fullmatch(r"gpu-nodes>=(\d+)", req):
            want = int(match.group(1))
            have = len(self.gpu_nodes)
            return None if have >= want else f"needs {want} nodes with {GPU}, the target has {have}"
        if match := re.fullmatch(r"nodes>=(\d+)", req):
            want = int(match.group(1))
            return None if len(self.nodes) >= want else f"needs {want} nodes, the target has {len(self.nodes)}"
        if req == "tpu":
            return None if self.tpu_nodes else f"no node has allocatable {TPU} (nodes: {names or 'none'})"
        if req == "rdma":
            return None if self.rdma_nodes else "no node has an RDMA/SR-IOV resource (rdma/*, nvidia.com/* NICs...)"
        if req == "real-hardware":
            emulated = [n.name for n in self.nodes if n.emulated]
            return None if not emulated else f"nodes are emulated ({', '.join(emulated[:5])}); needs real hardware"
        if req == "embedded":
            return None if self.embedded else "only meaningful on the embedded target"
        if req == "storageclass":
            return None if self.storage_classes else "no StorageClass exists"
        if req == "prometheus":
            return None if self.prometheus else "no Prometheus Service found (pass --prometheus-url or install one)"
        if req.startswith("service:"):
            name = req[8:]
            if name in self.system_services:
                return None
            hint = self.service_hints.get(name, "") if self.embedded else ""
            return f"no {name} service (label {SYSTEM_SERVICE_LABEL}={name})" + (
                f"; on the embedded target install it: {hint}" if hint else ""
            )
        if req.startswith("monitoring:"):
            kind = req[len("monitoring:") :]
            if kind not in MONITORING_COMPONENTS:
                raise ValueError(f"unknown monitoring component {kind!r}")
            marker = MONITORING_COMPONENTS[kind][0]
            return None if self.monitoring.get(kind) else f"no {kind} Service (no Service named or labelled *{marker}*)"
        if req.startswith("cni:"):
            cni = req[4:]
            return None if cni in self.cni else f"CNI {cni} not detected (detected: {', '.join(self.cni) or 'none'})"
        if req.startswith("api:"):
            group = req[4:]
            return None if group in self.api_groups else f"API group {group} is not served"
        if req in ADDONS:
            group, plural = ADDONS[req]
            if req in self.addon_gaps:
                return f"{req} is not installed ({plural}.{group} is served, but {self.addon_gaps[req]})"
            return None if req in self.addons else f"{req} is not installed ({plural}.{group} is not served)"
        raise ValueError(f"unknown requirement {requirement!r}")


# ----------------------------------------------------------------------------- discovery
def _optional(call: Any, *args: Any, what: str, **kwargs: Any) -> Any:
    """Run a read that a restricted account may be refused; a refusal means "unknown", logged, not fatal."""
    try:
        return call(*args, **kwargs)
    except ApiException as exc:
        if exc.status in (403, 404):
            # a refusal is logged loudly: the suite's own account (deploy/rbac.yaml) should never get one
            explanation = explain_forbidden(exc)
            log.log(logging.WARNING if exc.status == 403 else logging.INFO, "capability discovery: cannot %s (%s)",
                    what, explanation or exc.status)  # fmt: skip
            return None
        raise


def _node_info(node: client.V1Node) -> NodeInfo:
    labels = labels_of(node)
    status = node.status or client.V1NodeStatus()
    ready = any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))
    spec = node.spec or client.V1NodeSpec()
    taints = tuple({"key": t.key, "value": t.value or "", "effect": t.effect} for t in (spec.taints or []))
    return NodeInfo(
        name=name_of(node),
        labels=labels,
        allocatable=dict(status.allocatable or {}),
        taints=taints,
        ready=ready,
        emulated=labels.get(EMULATED_LABEL) == "true",
    )


def addon_gaps(
    addons: Iterable[str],
    *,
    daemonsets: Iterable[str] | None,
    services: Iterable[str] | None,
    pod_network: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Add-ons whose CRDs are served while the thing that acts on them is missing: a served CRD is only a schema.

    Found where the real control plane serves every CRD without running Istio or Multus: the suite's mesh and
    secondary-interface tests then ran against nothing and failed without measuring. Only what discovery could read
    is judged (``None``: the account may not list them, so nothing is concluded). A node agent whose pod network
    makes the attachments itself (the embedded target's, ``pod_network`` with ``attachments``) acts on them too.
    """
    present = set(addons)
    gaps: dict[str, str] = {}
    attaches = bool((pod_network or {}).get("attachments"))
    if "multus" in present and daemonsets is not None and not attaches and not any("multus" in d for d in daemonsets):
        gaps["multus"] = "no multus DaemonSet runs"
    if "istio" in present and services is not None and "istiod" not in set(services):
        gaps["istio"] = "no istiod Service exists (no mesh control plane)"
    return gaps


def _served_addons(api_client: client.ApiClient, group_list: Iterable[client.V1APIGroup]) -> set[str]:
    versions = {g.name: [v.version for v in g.versions] for g in group_list}
    custom = client.CustomObjectsApi(api_client)
    found: set[str] = set()
    for name, (group, plural) in ADDONS.items():
        for version in versions.get(group, ()):
            doc = _optional(custom.get_api_resources, group, version, what=f"discover {group}/{version}")
            if doc and any(r.name == plural for r in doc.resources):
                found.add(name)
                break
    return found


def discover(
    api_client: client.ApiClient,
    *,
    server_version: str,
    embedded: bool,
    service_hints: Mapping[str, str] | None = None,
) -> Capabilities:
    """Read the target once. ``service_hints`` (system service -> how to install it) come from the code that
    started the target; discovery itself knows nothing of the embedded target."""
    core = client.CoreV1Api(api_client)
    node_list = core.list_node().items
    nodes = tuple(_node_info(n) for n in node_list)
    pod_network = _pod_network(node_list)
    group_list = client.ApisApi(api_client).get_api_versions().groups
    groups = frozenset(g.name for g in group_list)
    addons = frozenset(_served_addons(api_client, group_list))
    classes_list = _optional(client.StorageV1Api(api_client).list_storage_class, what="list storage classes")
    classes = tuple(
        StorageClassInfo(
            name=sc.metadata.name,
            provisioner=sc.provisioner,
            binding_mode=sc.volume_binding_mode or "Immediate",
            default=(sc.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true",
            parameters=dict(sc.parameters or {}),
        )
        for sc in (classes_list.items if classes_list else [])
    )
    # CNIs run their node agents as DaemonSets, not always in kube-system (the Tigera operator puts calico-node in
    # calico-system): all namespaces when the account may list them, else kube-system alone.
    apps = client.AppsV1Api(api_client)
    daemonsets = _optional(apps.list_daemon_set_for_all_namespaces, what="list DaemonSets") or _optional(
        apps.list_namespaced_daemon_set, "kube-system", what="list kube-system DaemonSets"
    )
    ds_names = [d.metadata.name for d in (daemonsets.items if daemonsets else [])]
    cni = tuple(sorted(name for name, marker in _CNI_MARKERS.items() if any(marker in d for d in ds_names)))
    if pod_network.get("mode") == "netns" and pod_network.get("provider"):
        cni = tuple(sorted({*cni, pod_network["provider"]}))
    services = _optional(core.list_service_for_all_namespaces, what="list Services")
    prometheus = tuple(
        sorted(
            f"{s.metadata.namespace}/{s.metadata.name}:{p.port}"
            for s in (services.items if services else [])
            if "prometheus" in s.metadata.name and "operator" not in s.metadata.name
            for p in (s.spec.ports or [])
            if p.port == 9090
        )
    )
    monitoring = _monitoring_services(services.items if services else [])
    gaps = addon_gaps(
        addons,
        daemonsets=ds_names if daemonsets else None,
        services=[s.metadata.name for s in services.items] if services else None,
        # only the embedded target's own node makes every pod's attachments; a real control plane (kwok nodes beside
        # this machine) needs Multus' DaemonSet before its attachments count as installed
        pod_network=pod_network if embedded else None,
    )
    addons = addons - frozenset(gaps)
    system = {}
    for svc in services.items if services else []:
        name = (svc.metadata.labels or {}).get(SYSTEM_SERVICE_LABEL)
        if name and svc.spec.ports and svc.spec.cluster_ip not in (None, "None"):
            system[name] = ServiceRef(
                namespace=svc.metadata.namespace,
                name=svc.metadata.name,
                cluster_ip=svc.spec.cluster_ip,
                port=svc.spec.ports[0].port,
                description=(svc.metadata.annotations or {}).get("aibench.io/description", ""),
            )
    return Capabilities(
        system_services=system,
        service_hints=dict(service_hints or {}),
        server_version=server_version,
        embedded=embedded,
        nodes=nodes,
        api_groups=groups,
        addons=addons,
        addon_gaps=gaps,
        storage_classes=classes,
        cni=cni,
        prometheus=prometheus,
        monitoring=monitoring,
        pod_network=pod_network,
    )


def _pod_network(nodes: Iterable[client.V1Node]) -> dict[str, str]:
    """The first node's ``aibench.io/pod-network`` (JSON, written by the project's node agent), as strings."""
    for node in nodes:
        raw = annotations_of(node).get(POD_NETWORK_ANNOTATION)
        if not raw:
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            log.warning("node %s: %s is not JSON: %r", name_of(node), POD_NETWORK_ANNOTATION, raw[:200])
            continue
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
    return {}


#: monitoring component -> (substring of the Service name or app.kubernetes.io/name label, its usual port)
MONITORING_COMPONENTS: Mapping[str, tuple[str, int]] = {
    "dcgm-exporter": ("dcgm-exporter", 9400),
    "kube-state-metrics": ("kube-state-metrics", 8080),
    "node-exporter": ("node-exporter", 9100),
    "grafana": ("grafana", 80),
}


def _monitoring_services(services: Iterable[client.V1Service]) -> dict[str, tuple[str, ...]]:
    """Where the well-known monitoring components are (kube-prometheus-stack, GPU Operator and Debian names)."""
    found: dict[str, list[str]] = {}
    for svc in services:
        names = {name_of(svc), labels_of(svc).get("app.kubernetes.io/name", "")}
        ports = (svc.spec.ports if svc.spec else None) or []
        for kind, (marker, usual_port) in MONITORING_COMPONENTS.items():
            if ports and any(marker in n for n in names):
                port = next((p.port for p in ports if p.port == usual_port), ports[0].port)
                found.setdefault(kind, []).append(f"{metadata(svc).namespace}/{name_of(svc)}:{port}")
    return {kind: tuple(sorted(refs)) for kind, refs in found.items()}
