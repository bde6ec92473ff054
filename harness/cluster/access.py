"""Every Kubernetes API access the harness and the suites make on a real cluster, in one machine-readable place.

Why one list: ``deploy/rbac.yaml`` grants exactly these accesses (least privilege), ``docs/rbac.md`` explains them,
and ``tests/harness/test_rbac_manifest.py`` checks both directions: the ClusterRoles cover this list and grant
nothing beyond it, and every typed-client call and every applied kind in the code maps to an entry here. Code that
adds an API call without a line here (and in ``deploy/rbac.yaml``) fails that test instead of failing a nightly run
with Forbidden.

Roles: ``read`` and ``write`` are ClusterRoles bound cluster-wide (``write`` is confined to the suite's own
namespaces and cluster-scoped objects by the ValidatingAdmissionPolicy in ``deploy/rbac.yaml``); ``secret-read`` is
bound by a RoleBinding only in the namespace holding the S3 credentials (``k8s-ai-bench`` by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACCESSES",
    "APPLIED_KINDS",
    "CLIENT_CALLS",
    "CLUSTER_SCOPED_WRITES",
    "NON_RESOURCE_URLS",
    "NOT_GRANTED",
    "Access",
    "Role",
    "Verb",
    "markdown_table",
    "needed",
]

Verb = Literal["get", "list", "watch", "create", "patch", "delete"]
Role = Literal["read", "write", "secret-read"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    """One (API group, resource[/subresource]) and the verbs the code uses on it, with who uses it and why."""

    group: str  # "" is the core group
    resource: str  # plural, "pods/log" for a subresource
    verbs: tuple[Verb, ...]
    role: Role
    used_by: tuple[str, ...]  # modules
    why: str


def _a(group: str, resource: str, verbs: tuple[Verb, ...], role: Role, used_by: tuple[str, ...], why: str) -> Access:
    return Access(group=group, resource=resource, verbs=verbs, role=role, used_by=used_by, why=why)


_APPLY = "harness.cluster.manifests (Applier: create, merge-patch when it exists)"

ACCESSES: tuple[Access, ...] = (
    # ------------------------------------------------------------------------------------------------- read
    _a("", "nodes", ("list",), "read",
       ("harness.cluster.capabilities", "harness.probes.accelerators", "harness.practices.snapshot",
        "harness.observability.panel"),
       "capabilities (GPU/TPU/RDMA resources, labels, taints), GPU node health, practices snapshot"),
    _a("", "namespaces", ("get", "list"), "read",
       ("harness.cluster.namespaces", "harness.cluster.sweep", "harness.practices.snapshot"),
       "get: wait until a deleted test namespace is gone; list: sweep leftovers by label, practices snapshot"),
    _a("", "pods", ("get", "list", "watch"), "read",
       ("harness.cluster.collect", "harness.runners.*", "harness.probes.storage", "harness.probes.topology",
        "harness.probes.kueue", "harness.probes.accelerators", "harness.practices.snapshot",
        "harness.observability.panel"),
       "pod state of runs (own namespaces); all namespaces for GPU Operator validators and the practices "
       "snapshot; watch: pod startup latency is observed by a watch, not by polling"),
    _a("", "pods/log", ("get",), "read", ("harness.cluster.collect",),
       "workload logs are where measurements come from"),
    _a("", "events", ("list",), "read",
       ("harness.cluster.collect", "harness.runners.failures", "harness.probes.storage", "harness.runners.latency"),
       "failure evidence (scheduling, provisioning) and image-pull times"),
    _a("", "services", ("get", "list"), "read",
       ("harness.cluster.capabilities", "harness.cluster.references", "harness.runners.service"),
       "discover Prometheus/monitoring/system Services; resolve --redis-service; a served workload's ClusterIP"),
    _a("", "services/proxy", ("get",), "read", ("harness.cluster.prometheus",),
       "Prometheus, exporters and Grafana are read through the API server's service proxy (GET only)"),
    _a("", "endpoints", ("get",), "read", ("harness.runners.service",),
       "a served workload is ready when its Service has endpoints"),
    _a("", "persistentvolumeclaims", ("get",), "read", ("harness.probes.storage", "harness.runners.failures"),
       "claim binding of storage tests and workloads with volumes"),
    _a("", "persistentvolumes", ("get",), "read", ("harness.probes.storage",),
       "the bound volume's access modes and driver"),
    _a("", "configmaps", ("get", "list"), "read", ("harness.cluster.cni", "harness.runners.latency"),
       "kube-system/cilium-config (kube-proxy replacement); get/list latency of the API-call SLO test"),
    _a("", "resourcequotas", ("list",), "read", ("harness.practices.snapshot",), "practices: quotas per namespace"),
    _a("apps", "daemonsets", ("get", "list"), "read", ("harness.cluster.capabilities", "harness.cluster.cni"),
       "CNI detection by node-agent DaemonSets; the kube-proxy DaemonSet"),
    _a("apps", "deployments/status", ("get",), "read", ("harness.runners.service", "harness.runners.service_metrics"),
       "readiness and replica counts of served workloads"),
    _a("apps", "statefulsets/status", ("get",), "read", ("harness.runners.service",),
       "readiness of served workloads that are StatefulSets"),
    _a("batch", "jobs", ("get",), "read", ("harness.probes.kueue",), "whether Kueue unsuspended a gang Job"),
    _a("batch", "jobs/status", ("get",), "read", ("harness.runners.job",), "Job completion"),
    _a("storage.k8s.io", "storageclasses", ("list",), "read",
       ("harness.cluster.capabilities", "harness.practices.snapshot"), "storage tests choose classes"),
    _a("storage.k8s.io", "csidrivers", ("list",), "read", ("harness.probes.storage",),
       "which CSI drivers are installed"),
    _a("scheduling.k8s.io", "priorityclasses", ("list",), "read", ("harness.practices.snapshot",),
       "practices: priority classes"),
    _a("networking.k8s.io", "networkpolicies", ("list",), "read", ("harness.practices.snapshot",),
       "practices: namespaces without a NetworkPolicy"),
    _a("resource.k8s.io", "deviceclasses", ("list",), "read", ("harness.probes.accelerators",),
       "DRA: a DeviceClass selecting NVIDIA GPUs"),
    _a("gateway.networking.k8s.io", "gateways", ("list",), "read", ("harness.runners.gateways",),
       "the Gateway an HTTPRoute test attaches to"),
    _a("ray.io", "rayjobs", ("get",), "read", ("harness.runners.ray",), "RayJob status"),
    _a("ray.io", "rayclusters", ("get",), "read", ("harness.runners.ray",), "RayCluster worker groups"),
    _a("kubeflow.org", "mpijobs", ("get",), "read", ("harness.runners.mpijob",), "MPIJob conditions"),
    _a("jobset.x-k8s.io", "jobsets", ("get",), "read", ("harness.runners.jobset",), "JobSet conditions"),
    # ------------------------------------------------------------------------------------------------ write
    _a("", "namespaces", ("create", "delete"), "write", ("harness.cluster.namespaces", "harness.cluster.sweep"),
       "one labelled namespace per test, deleted afterwards (teardown deletes everything inside it)"),
    _a("", "pods", ("create", "patch", "delete"), "write",
       (_APPLY, "harness.runners.latency", "harness.probes.storage", "harness.practices.snapshot",
        "harness.runners.ray"),
       "bare-pod workloads, pod-startup SLO, storage and taint probes; delete: a Ray worker to test reconciliation"),
    _a("", "services", ("create", "patch"), "write", (_APPLY,), "served workloads"),
    _a("", "configmaps", ("create", "patch", "delete"), "write", (_APPLY, "harness.runners.latency"),
       "workload scripts; create/patch/delete latency of the API-call SLO test"),
    _a("", "secrets", ("create",), "write", ("harness.cluster.references",),
       "the S3 credentials copied into the test's namespace for the S3 workload"),
    _a("", "persistentvolumeclaims", ("create", "patch"), "write", (_APPLY, "harness.probes.storage"),
       "storage tests and workloads with volumes"),
    _a("apps", "deployments", ("create", "patch"), "write", (_APPLY,), "served workloads"),
    _a("batch", "jobs", ("create", "patch"), "write", (_APPLY, "harness.probes.kueue"), "run-to-completion workloads"),
    _a("autoscaling", "horizontalpodautoscalers", ("create", "patch"), "write", (_APPLY,),
       "inference-server autoscaling"),
    _a("networking.k8s.io", "networkpolicies", ("create", "patch"), "write", ("harness.probes.netpolicy",),
       "network isolation tests"),
    _a("resource.k8s.io", "resourceclaimtemplates", ("create", "patch"), "write", ("harness.probes.accelerators",),
       "DRA GPU probe"),
    _a("networking.istio.io", "virtualservices", ("create", "patch"), "write", (_APPLY,), "Istio routing split"),
    _a("networking.istio.io", "destinationrules", ("create", "patch"), "write", (_APPLY,), "Istio routing split"),
    _a("security.istio.io", "peerauthentications", ("create", "patch"), "write", (_APPLY,), "Istio mTLS"),
    _a("gateway.networking.k8s.io", "httproutes", ("create", "patch"), "write", (_APPLY,), "Gateway API routing"),
    _a("inference.networking.x-k8s.io", "inferencepools", ("create", "patch"), "write", (_APPLY,),
       "Gateway API inference extension"),
    _a("inference.networking.x-k8s.io", "inferencemodels", ("create", "patch"), "write", (_APPLY,),
       "Gateway API inference extension"),
    _a("kubeflow.org", "mpijobs", ("create", "patch"), "write", (_APPLY,), "NCCL over MPIJob"),
    _a("ray.io", "rayjobs", ("create", "patch"), "write", (_APPLY,), "Ray workloads"),
    _a("ray.io", "rayclusters", ("create", "patch"), "write", (_APPLY, "harness.runners.ray"),
       "Ray workloads; patch: scale a worker group"),
    _a("jobset.x-k8s.io", "jobsets", ("create", "patch"), "write", (_APPLY,), "TPU JAX over JobSet"),
    _a("kueue.x-k8s.io", "localqueues", ("create", "patch"), "write", ("harness.probes.kueue",),
       "Kueue gang admission"),
    _a("kueue.x-k8s.io", "clusterqueues", ("create", "patch", "delete"), "write", ("harness.probes.kueue",),
       "Kueue gang admission: a queue with a known quota (cluster-scoped, so deleted explicitly)"),
    _a("kueue.x-k8s.io", "resourceflavors", ("create", "patch", "delete"), "write", ("harness.probes.kueue",),
       "Kueue gang admission: the queue's flavor (cluster-scoped, so deleted explicitly)"),
    _a("scheduling.volcano.sh", "podgroups", ("create", "patch"), "write", (_APPLY,), "Volcano gang scheduling"),
    _a("monitoring.coreos.com", "servicemonitors", ("create", "patch"), "write", (_APPLY,),
       "inference metrics scraped by the Prometheus Operator"),
    _a("k8s.cni.cncf.io", "network-attachment-definitions", ("create", "patch"), "write", (_APPLY,),
       "Multus secondary networks"),
    # ---------------------------------------------------------------------------------- secret-read (namespaced)
    _a("", "secrets", ("get",), "secret-read", ("harness.cluster.references",),
       "--s3-secret namespace/name: S3 credentials, read only in the namespace this is bound in"),
)  # fmt: skip

#: Non-resource URLs read (API discovery by the dynamic client and capabilities, the server version).
NON_RESOURCE_URLS: tuple[str, ...] = ("/version", "/api", "/api/*", "/apis", "/apis/*")

#: Kinds the harness creates (through the Applier or the typed client): (API group, kind) -> resource.
APPLIED_KINDS: Mapping[tuple[str, str], str] = {
    ("", "ConfigMap"): "configmaps",
    ("", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("", "Pod"): "pods",
    ("", "Secret"): "secrets",
    ("", "Service"): "services",
    ("apps", "Deployment"): "deployments",
    ("batch", "Job"): "jobs",
    ("autoscaling", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("networking.k8s.io", "NetworkPolicy"): "networkpolicies",
    ("resource.k8s.io", "ResourceClaimTemplate"): "resourceclaimtemplates",
    ("networking.istio.io", "VirtualService"): "virtualservices",
    ("networking.istio.io", "DestinationRule"): "destinationrules",
    ("security.istio.io", "PeerAuthentication"): "peerauthentications",
    ("gateway.networking.k8s.io", "HTTPRoute"): "httproutes",
    ("inference.networking.x-k8s.io", "InferencePool"): "inferencepools",
    ("inference.networking.x-k8s.io", "InferenceModel"): "inferencemodels",
    ("kubeflow.org", "MPIJob"): "mpijobs",
    ("ray.io", "RayJob"): "rayjobs",
    ("ray.io", "RayCluster"): "rayclusters",
    ("jobset.x-k8s.io", "JobSet"): "jobsets",
    ("kueue.x-k8s.io", "LocalQueue"): "localqueues",
    ("kueue.x-k8s.io", "ClusterQueue"): "clusterqueues",
    ("kueue.x-k8s.io", "ResourceFlavor"): "resourceflavors",
    ("scheduling.volcano.sh", "PodGroup"): "podgroups",
    ("monitoring.coreos.com", "ServiceMonitor"): "servicemonitors",
    ("k8s.cni.cncf.io", "NetworkAttachmentDefinition"): "network-attachment-definitions",
}

#: The only cluster-scoped kinds the suite writes besides Namespaces; the admission policy admits exactly these.
CLUSTER_SCOPED_WRITES: tuple[tuple[str, str], ...] = (
    ("kueue.x-k8s.io", "clusterqueues"),
    ("kueue.x-k8s.io", "resourceflavors"),
)

_CORE, _APPS, _BATCH = "", "apps", "batch"
_CUSTOM_GETS = (
    ("ray.io", "rayjobs", "get"),
    ("ray.io", "rayclusters", "get"),
    ("kubeflow.org", "mpijobs", "get"),
    ("jobset.x-k8s.io", "jobsets", "get"),
)

#: Typed-client methods called in harness/ and suites/ -> the (group, resource, verb) each needs. The custom-object
#: calls name the resources their call sites pass (the test lists the call sites, a reader checks the arguments).
CLIENT_CALLS: Mapping[str, tuple[tuple[str, str, str], ...]] = {
    "list_node": ((_CORE, "nodes", "list"),),
    "create_namespace": ((_CORE, "namespaces", "create"),),
    "delete_namespace": ((_CORE, "namespaces", "delete"),),
    "read_namespace": ((_CORE, "namespaces", "get"),),
    "list_namespace": ((_CORE, "namespaces", "list"),),
    "list_namespaced_pod": ((_CORE, "pods", "list"), (_CORE, "pods", "watch")),
    "list_pod_for_all_namespaces": ((_CORE, "pods", "list"),),
    "read_namespaced_pod": ((_CORE, "pods", "get"),),
    "create_namespaced_pod": ((_CORE, "pods", "create"),),
    "delete_namespaced_pod": ((_CORE, "pods", "delete"),),
    "read_namespaced_pod_log": ((_CORE, "pods/log", "get"),),
    "connect_get_namespaced_pod_exec": ((_CORE, "pods/exec", "create"), (_CORE, "pods/exec", "get")),
    "list_namespaced_event": ((_CORE, "events", "list"),),
    "read_namespaced_service": ((_CORE, "services", "get"),),
    "list_service_for_all_namespaces": ((_CORE, "services", "list"),),
    "read_namespaced_endpoints": ((_CORE, "endpoints", "get"),),
    "create_namespaced_persistent_volume_claim": ((_CORE, "persistentvolumeclaims", "create"),),
    "read_namespaced_persistent_volume_claim": ((_CORE, "persistentvolumeclaims", "get"),),
    "read_persistent_volume": ((_CORE, "persistentvolumes", "get"),),
    "read_namespaced_config_map": ((_CORE, "configmaps", "get"),),
    "list_namespaced_config_map": ((_CORE, "configmaps", "list"),),
    "create_namespaced_config_map": ((_CORE, "configmaps", "create"),),
    "patch_namespaced_config_map": ((_CORE, "configmaps", "patch"),),
    "delete_namespaced_config_map": ((_CORE, "configmaps", "delete"),),
    "read_namespaced_secret": ((_CORE, "secrets", "get"),),
    "create_namespaced_secret": ((_CORE, "secrets", "create"),),
    "list_resource_quota_for_all_namespaces": ((_CORE, "resourcequotas", "list"),),
    "read_namespaced_daemon_set": ((_APPS, "daemonsets", "get"),),
    "list_namespaced_daemon_set": ((_APPS, "daemonsets", "list"),),
    "list_daemon_set_for_all_namespaces": ((_APPS, "daemonsets", "list"),),
    "read_namespaced_deployment_status": ((_APPS, "deployments/status", "get"),),
    "read_namespaced_stateful_set_status": ((_APPS, "statefulsets/status", "get"),),
    "read_namespaced_job": ((_BATCH, "jobs", "get"),),
    "read_namespaced_job_status": ((_BATCH, "jobs/status", "get"),),
    "list_storage_class": (("storage.k8s.io", "storageclasses", "list"),),
    "list_csi_driver": (("storage.k8s.io", "csidrivers", "list"),),
    "list_priority_class": (("scheduling.k8s.io", "priorityclasses", "list"),),
    "list_network_policy_for_all_namespaces": (("networking.k8s.io", "networkpolicies", "list"),),
    "list_cluster_custom_object": (
        ("resource.k8s.io", "deviceclasses", "list"),
        ("gateway.networking.k8s.io", "gateways", "list"),
    ),
    "get_namespaced_custom_object": _CUSTOM_GETS,
    "patch_namespaced_custom_object": (("ray.io", "rayclusters", "patch"),),
    "get_api_resources": (),  # GET /apis/<group>/<version>: discovery, a non-resource URL
    "get_api_versions": (),  # GET /apis
    "get_code": (),  # GET /version
}

#: Accesses some library code could make but that no suite or runner path makes, so RBAC does not grant them. The
#: test fails when a module other than the defining one starts using them: grant them then.
NOT_GRANTED: Mapping[str, str] = {
    "connect_get_namespaced_pod_exec": (
        "harness.cluster.podexec.exec_in_pod is used by no suite; exec into any pod cluster-wide is close to "
        "cluster-admin, so pods/exec is granted only when a suite needs it (and then admission must cover CONNECT)"
    ),
}


def needed(role: Role | None = None) -> set[tuple[str, str, str]]:
    """(group, resource, verb) triples of :data:`ACCESSES`, of one role or all."""
    return {(a.group, a.resource, v) for a in ACCESSES if role is None or a.role == role for v in a.verbs}


def markdown_table() -> str:
    """The table of ``docs/rbac.md`` (a test keeps the two equal): one row per :class:`Access`."""
    rows = ["| role | apiGroup | resource | verbs | used by | why |", "|---|---|---|---|---|---|"]
    for a in ACCESSES:
        group = f"`{a.group}`" if a.group else '`""` (core)'
        used_by = ", ".join(f"`{m}`" for m in a.used_by)
        rows.append(f"| {a.role} | {group} | `{a.resource}` | {', '.join(a.verbs)} | {used_by} | {a.why} |")
    return "\n".join(rows)
