"""What the embedded scheduler matches a pod against: label selectors, node and pod (anti-)affinity terms,
taints and tolerations, and the facts of a node parsed once (labels, taints, allocatable, readiness).

Pure functions of their arguments, shared by the scheduler's filters and
:class:`~harness.embedded.schedule_usage.NodeUsage` (which caches node facts and the bound pods' anti-affinity terms).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.quantity import to_millis

Obj = dict[str, Any]

HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
NOT_READY_KEY = "node.kubernetes.io/not-ready"
UNREACHABLE_KEY = "node.kubernetes.io/unreachable"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@functools.lru_cache(maxsize=8192)
def milli_of(text: str) -> int:
    """Milli-units of a quantity, rounded up like kube's MilliValue; cached because a cluster repeats few strings."""
    return to_millis(text)


def milli(value: object) -> int:
    # YAML-written specs often carry bare numbers ("nvidia.com/gpu: 8"); the API would hold them as strings.
    return milli_of(value if isinstance(value, str) else str(value))


def namespace_of(obj: Mapping[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


# ---------------------------------------------------------------------------------------------------- selectors

# One requirement: (key, operator, values). A compiled selector is a tuple of them, ANDed; None matches nothing.
Requirement = tuple[str, str, frozenset[str]]
Selector = tuple[Requirement, ...]


def compile_label_selector(selector: Mapping[str, Any] | None) -> Selector | None:
    """metav1.LabelSelector -> requirements; ``None`` (no selector) matches nothing, ``{}`` matches everything."""
    if selector is None:
        return None
    reqs: list[Requirement] = [(k, "In", frozenset((v,))) for k, v in (selector.get("matchLabels") or {}).items()]
    reqs.extend(
        (e["key"], e.get("operator", ""), frozenset(e.get("values") or ()))
        for e in selector.get("matchExpressions") or ()
    )
    return tuple(reqs)


def selector_matches(selector: Selector | None, labels: Mapping[str, str]) -> bool:
    """Evaluate requirements; also serves node selector requirements, hence Gt/Lt."""
    if selector is None:
        return False
    for key, op, values in selector:
        value = labels.get(key)
        if op == "In":
            if value is None or value not in values:
                return False
        elif op == "NotIn":
            if value is not None and value in values:
                return False
        elif op == "Exists":
            if value is None:
                return False
        elif op == "DoesNotExist":
            if value is not None:
                return False
        elif op in ("Gt", "Lt"):
            if value is None or len(values) != 1:
                return False
            try:
                have, bound = int(value), int(next(iter(values)))
            except ValueError:
                return False
            if (op == "Gt" and not have > bound) or (op == "Lt" and not have < bound):
                return False
        else:
            return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeTerm:
    """One NodeSelectorTerm: matchExpressions on labels and matchFields on metadata.name, ANDed."""

    expressions: Selector
    fields: Selector

    @classmethod
    def parse(cls, term: Mapping[str, Any]) -> NodeTerm | None:
        # An empty term matches no node (kube: "a null or empty node selector term matches no objects").
        if not term.get("matchExpressions") and not term.get("matchFields"):
            return None
        return cls(
            expressions=compile_label_selector({"matchExpressions": term.get("matchExpressions") or []}) or (),
            fields=compile_label_selector({"matchExpressions": term.get("matchFields") or []}) or (),
        )

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if self.fields:
            if any(key != "metadata.name" for key, _, _ in self.fields):
                return False
            if not selector_matches(self.fields, {"metadata.name": name}):
                return False
        return selector_matches(self.expressions, labels)


def node_terms(terms: Iterable[Mapping[str, Any]]) -> tuple[NodeTerm, ...]:
    return tuple(t for t in (NodeTerm.parse(term) for term in terms) if t is not None)


@dataclass(frozen=True, slots=True, kw_only=True)
class PodTerm:
    """A pod (anti-)affinity term with its namespaces resolved against the namespace of the pod that owns it."""

    selector: Selector | None
    namespaces: frozenset[str]
    namespace_selector: Selector | None
    topology_key: str
    weight: int = 1

    @classmethod
    def parse(cls, term: Mapping[str, Any], owner_namespace: str, weight: int = 1) -> PodTerm:
        namespaces = frozenset(term.get("namespaces") or ())
        ns_selector = compile_label_selector(term.get("namespaceSelector"))
        if not namespaces and ns_selector is None:
            namespaces = frozenset((owner_namespace,))
        return cls(
            selector=compile_label_selector(term.get("labelSelector")),
            namespaces=namespaces,
            namespace_selector=ns_selector,
            topology_key=term.get("topologyKey", ""),
            weight=weight,
        )

    def matches(self, namespace: str, labels: Mapping[str, str], ns_labels: NamespaceLabels) -> bool:
        if namespace not in self.namespaces and (
            self.namespace_selector is None or not selector_matches(self.namespace_selector, ns_labels(namespace))
        ):
            return False
        return selector_matches(self.selector, labels)


class NamespaceLabels:
    """Namespace labels for namespaceSelector; every namespace carries kubernetes.io/metadata.name as in kube."""

    __slots__ = ("_cache", "_given")

    def __init__(self, given: Mapping[str, Mapping[str, str]] | None) -> None:
        self._given = given or {}
        self._cache: dict[str, Mapping[str, str]] = {}

    def __call__(self, namespace: str) -> Mapping[str, str]:
        found = self._cache.get(namespace)
        if found is None:
            found = {**self._given.get(namespace, {}), NAMESPACE_NAME_LABEL: namespace}
            self._cache[namespace] = found
        return found


def required_terms(pod: Mapping[str, Any], kind: str) -> tuple[PodTerm, ...]:
    block = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    ns = namespace_of(pod)
    return tuple(PodTerm.parse(t, ns) for t in block.get("requiredDuringSchedulingIgnoredDuringExecution") or ())


def preferred_terms(pod: Mapping[str, Any], kind: str) -> tuple[PodTerm, ...]:
    block = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    ns = namespace_of(pod)
    return tuple(
        PodTerm.parse(t.get("podAffinityTerm") or {}, ns, int(t.get("weight", 0)))
        for t in block.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    )


# ------------------------------------------------------------------------------------------------- taints, nodes


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """v1.Toleration.ToleratesTaint, line for line."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFacts:
    """What the filters read from a node, parsed once per node version rather than once per pod."""

    name: str
    labels: Mapping[str, str]
    allocatable: Mapping[str, int]  # milli-units
    cpu: int  # allocatable cpu, memory (milli-units) and pod slots, read out for the hot loop
    memory: int
    max_pods: int
    unschedulable: bool
    hard_taints: tuple[Obj, ...]  # NoSchedule / NoExecute, plus the taint a not-Ready node would carry
    soft_taints: tuple[Obj, ...]  # PreferNoSchedule

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> NodeFacts:
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        # The API server defaults allocatable to capacity; emulated nodes may only state capacity.
        alloc = status.get("allocatable") or status.get("capacity") or {}
        taints = list(spec.get("taints") or ())
        ready_taint = readiness_taint(status)
        if ready_taint is not None and not any(
            t.get("key") == ready_taint["key"] and t.get("effect") in HARD_EFFECTS for t in taints
        ):
            # The node lifecycle controller would add this taint; the scheduler only ever sees the taint.
            taints.append(ready_taint)
        allocatable = {name: milli(q) for name, q in alloc.items()}
        return cls(
            name=(node.get("metadata") or {}).get("name", ""),
            labels=labels_of(node),
            allocatable=allocatable,
            cpu=allocatable.get("cpu", 0),
            memory=allocatable.get("memory", 0),
            max_pods=allocatable.get("pods", 0) // 1000,
            unschedulable=bool(spec.get("unschedulable")),
            hard_taints=tuple(t for t in taints if t.get("effect") in HARD_EFFECTS),
            soft_taints=tuple(t for t in taints if t.get("effect") == "PreferNoSchedule"),
        )


def readiness_taint(status: Mapping[str, Any]) -> Obj | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            if cond.get("status") == "False":
                return {"key": NOT_READY_KEY, "effect": "NoSchedule"}
            if cond.get("status") == "Unknown":
                return {"key": UNREACHABLE_KEY, "effect": "NoSchedule"}
            return None
    return None  # no Ready condition reported (an emulated node without status): treat as Ready
