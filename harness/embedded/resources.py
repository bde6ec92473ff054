"""The resource types the embedded API server serves: built-in kinds plus those CustomResourceDefinitions add.

One :class:`ResourceType` describes one (group, version, plural) endpoint: enough for routing, discovery documents,
kubectl's ``api-resources`` and the dynamic client. The registry is the only place that maps between kinds,
plurals and API paths, so a CRD created at run time becomes routable by registering one more entry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceType:
    """One served resource endpoint."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    builtin: bool = True
    verbs: tuple[str, ...] = ALL_VERBS
    # Deleting these returns the object (like the real registry's ReturnDeletedObject); others return a Status.
    returns_deleted_object: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def key(self) -> tuple[str, str]:
        """Storage identity: one bucket per (group, plural), whatever the version."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The URL path of a collection or an object, for selfLink-like uses and tests."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


def _t(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    returns_object: bool = False,
    verbs: tuple[str, ...] = ALL_VERBS,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        short_names=short,
        subresources=frozenset(sub),
        categories=categories,
        returns_deleted_object=returns_object,
        verbs=verbs,
    )


_ALL = ("all",)
_CREATE = ("create",)
BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _t("", "v1", "Namespace", "namespaces", False, ("ns",), ("status", "finalize"), returns_object=True),
    _t("", "v1", "Node", "nodes", False, ("no",), ("status",)),
    _t(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        ("po",),
        ("status", "log", "binding", "eviction", "exec", "portforward"),
        _ALL,
        True,
    ),
    _t("", "v1", "Binding", "bindings", True, verbs=("create",)),
    _t("", "v1", "Service", "services", True, ("svc",), ("status",), _ALL, True),
    _t("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    _t("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _t("", "v1", "Secret", "secrets", True),
    _t("", "v1", "Event", "events", True, ("ev",)),
    _t("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), ("status",), returns_object=True),
    _t("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), ("status",), returns_object=True),
    _t("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",), returns_object=True),
    _t("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",), ("status",), returns_object=True),
    _t("", "v1", "LimitRange", "limitranges", True, ("limits",)),
    _t("batch", "v1", "Job", "jobs", True, (), ("status",), _ALL),
    _t("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status", "scale"), _ALL),
    _t("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status", "scale"), _ALL),
    _t("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), _ALL),
    _t("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("status", "scale"), _ALL),
    _t("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    _t("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",), returns_object=True),
    _t("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False, (), returns_object=True),
    _t("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    # Node heartbeats (kube-node-lease) and leader election of operators.
    _t("coordination.k8s.io", "v1", "Lease", "leases", True),
    # Stored and listed so RBAC manifests apply; the embedded target does not authorize (docs/embedded-target.md).
    _t("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _t("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _t("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _t("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    # Stored, never evaluated (the server answers each write of one with a Warning saying so).
    _t(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        False,
        (),
        ("status",),
    ),
    _t(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        False,
    ),
    # Answered, not stored: "may I?" is always yes (no authorization) and "who am I?" names the bearer.
    _t("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, verbs=_CREATE),
    _t("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False, verbs=_CREATE),
    _t("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=_CREATE),
    _t("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("status",), _ALL),
    _t("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    _t("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), ("status",)),
    _t("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",), ("status",), _ALL),
    _t("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), ("status", "scale"), _ALL),
    _t(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        ("status",),
    ),
)


@dataclass(slots=True)
class Registry:
    """Thread-safe map from API paths and kinds to :class:`ResourceType` (built-ins plus live CRDs)."""

    _by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_kind: dict[tuple[str, str], ResourceType] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def with_builtins(cls) -> Registry:
        registry = cls()
        for rtype in BUILTIN_TYPES:
            registry.add(rtype)
        return registry

    def add(self, rtype: ResourceType) -> None:
        with self._lock:
            self._by_path[(rtype.group, rtype.version, rtype.plural)] = rtype
            self._by_kind[(rtype.api_version, rtype.kind)] = rtype

    def remove_group_resource(self, group: str, plural: str) -> None:
        """Forget every version of a custom resource (its CRD was deleted)."""
        with self._lock:
            for key in [k for k, t in self._by_path.items() if (t.group, t.plural) == (group, plural)]:
                rtype = self._by_path.pop(key)
                self._by_kind.pop((rtype.api_version, rtype.kind), None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def get(self, group: str, plural: str) -> ResourceType:
        """The (first) served type of a group resource; the caller knows it exists."""
        for rtype in self.types():
            if rtype.group == group and rtype.plural == plural:
                return rtype
        raise KeyError(f"{plural}.{group}")

    def types(self) -> Iterator[ResourceType]:
        with self._lock:
            snapshot = list(self._by_path.values())
        return iter(snapshot)

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions (preferred first), core group excluded."""
        out: dict[str, list[str]] = {}
        for rtype in self.types():
            if rtype.group and rtype.version not in out.setdefault(rtype.group, []):
                out[rtype.group].append(rtype.version)
        return out


def crd_resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The endpoints a CustomResourceDefinition asks for: one per served version."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    subresource_names: set[str] = set()
    out: list[ResourceType] = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        subresource_names = {s for s in ("status", "scale") if s in subresources}
        out.append(
            ResourceType(
                group=spec.get("group", ""),
                version=version["name"],
                kind=names.get("kind", ""),
                plural=names.get("plural", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(subresource_names),
                builtin=False,
            )
        )
    return out
