"""Pure scheduling logic of the embedded target: pick a node for one pod, or explain why none fits.

The embedded scheduler must reproduce what tests observe on a real cluster: which node a pod lands on for the
common placement rules, and the exact ``PodScheduled=False`` / ``FailedScheduling`` message when it cannot be
placed, because workload checks match on texts such as ``Insufficient nvidia.com/gpu``. So the filters, their
order and their reason strings follow kube-scheduler's default profile (NodeUnschedulable, NodeName,
TaintToleration, NodeAffinity, NodeResourcesFit, PodTopologySpread, InterPodAffinity), and the message is built
like ``FitError.Error()``: a histogram of reasons, one count per node, under the first filter each node failed.

Scoring is deliberately simpler than kube's weighted sum of normalised plugin scores: a lexicographic key
(preferred node affinity, preferred pod (anti-)affinity, PreferNoSchedule taints, ScheduleAnyway skew, least
allocated cpu/memory, node name). It is deterministic, which makes placements reproducible across runs and easy
to assert on, and it agrees with kube whenever one rule clearly dominates.

Everything here is a function of its arguments; the caller owns the store and the binding. For scale (10,000 pods
over 1,000 nodes, scheduled one at a time) the caller keeps a :class:`NodeUsage` with running per-node sums
instead of letting :func:`schedule` re-add every bound pod's requests on every call. Quantities are compared as
integer milli-units internally, since exact :class:`~decimal.Decimal` arithmetic per node per pod costs
seconds at that scale while every quantity the API accepts for scheduling is a whole number of milli-units.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from harness.embedded.quantity import from_millis, parse_quantity, to_millis

__all__ = [
    "NO_NODES_MESSAGE",
    "PREEMPTION_NOT_HELPFUL",
    "PREEMPTION_NO_VICTIMS",
    "REASON_EXISTING_ANTI_AFFINITY",
    "REASON_NODE_AFFINITY",
    "REASON_POD_AFFINITY",
    "REASON_POD_ANTI_AFFINITY",
    "REASON_SPREAD",
    "REASON_SPREAD_MISSING_LABEL",
    "REASON_TOO_MANY_PODS",
    "REASON_UNSCHEDULABLE",
    "SCHEDULING_GATED_MESSAGE",
    "Decision",
    "NodeUsage",
    "insufficient",
    "pod_requests",
    "schedule",
    "untolerated_taint",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Reason strings exactly as kube-scheduler's plugins report them (pkg/scheduler/framework/plugins/...).
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_TOO_MANY_PODS = "Too many pods"
REASON_SPREAD = "node(s) didn't match pod topology spread constraints"
REASON_SPREAD_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
REASON_POD_AFFINITY = "node(s) didn't match pod affinity rules"
REASON_POD_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
PREEMPTION_NO_VICTIMS = "No preemption victims found for incoming pod"
NO_NODES_MESSAGE = "no nodes available to schedule pods"
SCHEDULING_GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"


def insufficient(resource: str) -> str:
    """NodeResourcesFit's reason for one short resource."""
    return f"Insufficient {resource}"


def untolerated_taint(key: str, value: str) -> str:
    """TaintToleration's reason; kube prints the first untolerated taint as ``{key: value}``."""
    return f"node(s) had untolerated taint {{{key}: {value}}}"


# Reasons for which evicting lower-priority pods cannot help (kube: UnschedulableAndUnresolvable). Every other
# reason is "resolvable" and, since this scheduler never preempts, reported as "no victims found".
_UNRESOLVABLE_FIXED = frozenset({REASON_UNSCHEDULABLE, REASON_NODE_AFFINITY, REASON_POD_AFFINITY})
_TAINT_PREFIX = "node(s) had untolerated taint "

_TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
_HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
_UNSCHEDULABLE_TAINT: Obj = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
_NOT_READY_KEY = "node.kubernetes.io/not-ready"
_UNREACHABLE_KEY = "node.kubernetes.io/unreachable"
_NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Kube's scoring treats a container without requests as asking for 100m CPU and 200Mi memory
# (pkg/scheduler/util.GetNonzeroRequests) so that best-effort pods still spread instead of piling on one node.
_DEFAULT_CPU_MILLI = 100
_DEFAULT_MEMORY_MILLI = 200 * 1024 * 1024 * 1000
_NATIVE_ORDER = {"cpu": 0, "memory": 1, "ephemeral-storage": 2}
_NO_USAGE = (0, 0)
_MISSING_DOMAIN = 1 << 62  # ScheduleAnyway score for a node lacking the topology key: after every labelled node


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Outcome of one scheduling attempt.

    ``node_name`` is None when the pod is unschedulable; ``message`` is then the kube-style FailedScheduling text
    (also used for the PodScheduled condition), otherwise the Scheduled event text. ``reasons`` maps each filter
    reason to the number of nodes that failed with it, so tests need not parse the message.
    """

    node_name: str | None
    message: str
    reasons: Mapping[str, int]


# --------------------------------------------------------------------------------------------------- quantities


@functools.lru_cache(maxsize=8192)
def _milli_of(text: str) -> int:
    """Milli-units of a quantity, rounded up like kube's MilliValue; cached because a cluster repeats few strings."""
    return to_millis(text)


def _milli(value: object) -> int:
    # YAML-written specs often carry bare numbers ("nvidia.com/gpu: 8"); the API would hold them as strings.
    return _milli_of(value if isinstance(value, str) else str(value))


def _container_requests(container: Mapping[str, Any]) -> dict[str, Decimal]:
    """Requests of one container, with limits standing in for missing requests (API server defaulting)."""
    resources = container.get("resources") or {}
    out = {name: parse_quantity(_text(q)) for name, q in (resources.get("limits") or {}).items()}
    for name, q in (resources.get("requests") or {}).items():
        out[name] = parse_quantity(_text(q))
    return out


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _add_into(total: dict[str, Decimal], extra: Mapping[str, Decimal]) -> None:
    for name, q in extra.items():
        total[name] = total.get(name, Decimal(0)) + q


def _max_into(total: dict[str, Decimal], other: Mapping[str, Decimal]) -> None:
    for name, q in other.items():
        if q > total.get(name, Decimal(0)):
            total[name] = q


def pod_requests(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    """Effective requests of a pod, as kube-scheduler computes them (resource.PodRequests).

    ``max(sum(containers) + sum(sidecars), max over init containers of (its request + sidecars started before
    it)) + overhead``; a limit counts as the request when the request is missing. Zero entries are dropped, since
    the fit check skips resources a pod does not ask for.
    """
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or ():
        _add_into(total, _container_requests(container))
    init_peak: dict[str, Decimal] = {}
    sidecars: dict[str, Decimal] = {}
    for container in spec.get("initContainers") or ():
        reqs = _container_requests(container)
        if container.get("restartPolicy") == "Always":
            # A restartable init container (sidecar) keeps running next to the app containers.
            _add_into(total, reqs)
            _add_into(sidecars, reqs)
            _max_into(init_peak, sidecars)
        else:
            during = dict(sidecars)
            _add_into(during, reqs)
            _max_into(init_peak, during)
    _max_into(total, init_peak)
    _add_into(total, {name: parse_quantity(_text(q)) for name, q in (spec.get("overhead") or {}).items()})
    return {name: q for name, q in total.items() if q != 0}


def _requests_milli(pod: Mapping[str, Any]) -> dict[str, int]:
    return {name: math.ceil(q * 1000) for name, q in pod_requests(pod).items()}


def _nonzero_cpu_memory(reqs: Mapping[str, int]) -> tuple[int, int]:
    return reqs.get("cpu") or _DEFAULT_CPU_MILLI, reqs.get("memory") or _DEFAULT_MEMORY_MILLI


def _is_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in _TERMINAL_PHASES


def _pod_key(pod: Mapping[str, Any]) -> str:
    md = pod.get("metadata") or {}
    uid = md.get("uid")
    if uid:
        return str(uid)
    return f"{md.get('namespace', 'default')}/{md.get('name', '')}"


def _namespace(obj: Mapping[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


# ---------------------------------------------------------------------------------------------------- selectors

# One requirement: (key, operator, values). A compiled selector is a tuple of them, ANDed; None matches nothing.
_Req = tuple[str, str, frozenset[str]]
_Selector = tuple[_Req, ...]


def _compile_label_selector(selector: Mapping[str, Any] | None) -> _Selector | None:
    """metav1.LabelSelector -> requirements; ``None`` (no selector) matches nothing, ``{}`` matches everything."""
    if selector is None:
        return None
    reqs: list[_Req] = [(k, "In", frozenset((v,))) for k, v in (selector.get("matchLabels") or {}).items()]
    reqs.extend(
        (e["key"], e.get("operator", ""), frozenset(e.get("values") or ()))
        for e in selector.get("matchExpressions") or ()
    )
    return tuple(reqs)


def _matches(selector: _Selector | None, labels: Mapping[str, str]) -> bool:
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
class _NodeTerm:
    """One NodeSelectorTerm: matchExpressions on labels and matchFields on metadata.name, ANDed."""

    expressions: _Selector
    fields: _Selector

    @classmethod
    def parse(cls, term: Mapping[str, Any]) -> _NodeTerm | None:
        # An empty term matches no node (kube: "a null or empty node selector term matches no objects").
        if not term.get("matchExpressions") and not term.get("matchFields"):
            return None
        return cls(
            expressions=_compile_label_selector({"matchExpressions": term.get("matchExpressions") or []}) or (),
            fields=_compile_label_selector({"matchExpressions": term.get("matchFields") or []}) or (),
        )

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if self.fields:
            if any(key != "metadata.name" for key, _, _ in self.fields):
                return False
            if not _matches(self.fields, {"metadata.name": name}):
                return False
        return _matches(self.expressions, labels)


def _node_terms(terms: Iterable[Mapping[str, Any]]) -> tuple[_NodeTerm, ...]:
    return tuple(t for t in (_NodeTerm.parse(term) for term in terms) if t is not None)


@dataclass(frozen=True, slots=True, kw_only=True)
class _PodTerm:
    """A pod (anti-)affinity term with its namespaces resolved against the namespace of the pod that owns it."""

    selector: _Selector | None
    namespaces: frozenset[str]
    namespace_selector: _Selector | None
    topology_key: str
    weight: int = 1

    @classmethod
    def parse(cls, term: Mapping[str, Any], owner_namespace: str, weight: int = 1) -> _PodTerm:
        namespaces = frozenset(term.get("namespaces") or ())
        ns_selector = _compile_label_selector(term.get("namespaceSelector"))
        if not namespaces and ns_selector is None:
            namespaces = frozenset((owner_namespace,))
        return cls(
            selector=_compile_label_selector(term.get("labelSelector")),
            namespaces=namespaces,
            namespace_selector=ns_selector,
            topology_key=term.get("topologyKey", ""),
            weight=weight,
        )

    def matches(self, namespace: str, labels: Mapping[str, str], ns_labels: _NamespaceLabels) -> bool:
        if namespace not in self.namespaces and (
            self.namespace_selector is None or not _matches(self.namespace_selector, ns_labels(namespace))
        ):
            return False
        return _matches(self.selector, labels)


class _NamespaceLabels:
    """Namespace labels for namespaceSelector; every namespace carries kubernetes.io/metadata.name as in kube."""

    __slots__ = ("_cache", "_given")

    def __init__(self, given: Mapping[str, Mapping[str, str]] | None) -> None:
        self._given = given or {}
        self._cache: dict[str, Mapping[str, str]] = {}

    def __call__(self, namespace: str) -> Mapping[str, str]:
        found = self._cache.get(namespace)
        if found is None:
            found = {**self._given.get(namespace, {}), _NAMESPACE_NAME_LABEL: namespace}
            self._cache[namespace] = found
        return found


def _required_terms(pod: Mapping[str, Any], kind: str) -> tuple[_PodTerm, ...]:
    block = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    ns = _namespace(pod)
    return tuple(_PodTerm.parse(t, ns) for t in block.get("requiredDuringSchedulingIgnoredDuringExecution") or ())


def _preferred_terms(pod: Mapping[str, Any], kind: str) -> tuple[_PodTerm, ...]:
    block = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    ns = _namespace(pod)
    return tuple(
        _PodTerm.parse(t.get("podAffinityTerm") or {}, ns, int(t.get("weight", 0)))
        for t in block.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    )


# ------------------------------------------------------------------------------------------------- taints, nodes


def _tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
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


def _tolerated(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    return any(_tolerates(t, taint) for t in tolerations)


@dataclass(frozen=True, slots=True, kw_only=True)
class _NodeFacts:
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
    def of(cls, node: Mapping[str, Any]) -> _NodeFacts:
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        # The API server defaults allocatable to capacity; emulated nodes may only state capacity.
        alloc = status.get("allocatable") or status.get("capacity") or {}
        taints = list(spec.get("taints") or ())
        ready_taint = _readiness_taint(status)
        if ready_taint is not None and not any(
            t.get("key") == ready_taint["key"] and t.get("effect") in _HARD_EFFECTS for t in taints
        ):
            # The node lifecycle controller would add this taint; the scheduler only ever sees the taint.
            taints.append(ready_taint)
        allocatable = {name: _milli(q) for name, q in alloc.items()}
        return cls(
            name=(node.get("metadata") or {}).get("name", ""),
            labels=_labels(node),
            allocatable=allocatable,
            cpu=allocatable.get("cpu", 0),
            memory=allocatable.get("memory", 0),
            max_pods=allocatable.get("pods", 0) // 1000,
            unschedulable=bool(spec.get("unschedulable")),
            hard_taints=tuple(t for t in taints if t.get("effect") in _HARD_EFFECTS),
            soft_taints=tuple(t for t in taints if t.get("effect") == "PreferNoSchedule"),
        )


def _readiness_taint(status: Mapping[str, Any]) -> Obj | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            if cond.get("status") == "False":
                return {"key": _NOT_READY_KEY, "effect": "NoSchedule"}
            if cond.get("status") == "Unknown":
                return {"key": _UNREACHABLE_KEY, "effect": "NoSchedule"}
            return None
    return None  # no Ready condition reported (an emulated node without status): treat as Ready


# ------------------------------------------------------------------------------------------------------- usage


@dataclass(frozen=True, slots=True, kw_only=True)
class _Contribution:
    node_name: str
    requests: Mapping[str, int]
    nonzero: tuple[int, int]
    anti_terms: tuple[_PodTerm, ...]


class NodeUsage:
    """Running per-node sums of bound pods' requests, so scheduling one more pod costs O(nodes), not O(pods).

    The caller calls :meth:`add` when it binds a pod and :meth:`remove` when the pod becomes terminal
    (Succeeded/Failed) or is deleted. Each pod's contribution is remembered under its uid (or namespace/name), so
    ``remove`` subtracts exactly what ``add`` added even if the pod dict changed since, and repeating either call
    is harmless. It also caches parsed node facts, keyed by the node dict's identity and resourceVersion, and the
    pods with required anti-affinity that every incoming pod must be checked against.
    """

    __slots__ = ("_anti", "_by_pod", "_facts", "_nonzero", "_pod_count", "_requested")

    def __init__(self) -> None:
        self._requested: dict[str, dict[str, int]] = {}
        self._nonzero: dict[str, list[int]] = {}
        self._pod_count: dict[str, int] = {}
        self._by_pod: dict[str, _Contribution] = {}
        self._anti: dict[str, _Contribution] = {}
        self._facts: dict[str, tuple[Mapping[str, Any], object, _NodeFacts]] = {}

    @classmethod
    def from_pods(cls, pods_by_node: Mapping[str, Iterable[Mapping[str, Any]]]) -> NodeUsage:
        """Sum the non-terminal pods already bound to each node."""
        usage = cls()
        for node_name, pods in pods_by_node.items():
            for pod in pods:
                if not _is_terminal(pod):
                    usage.add(node_name, pod)
        return usage

    def add(self, node_name: str, pod: Mapping[str, Any]) -> None:
        """Count ``pod`` as bound to ``node_name`` (moving it if it was counted elsewhere)."""
        key = _pod_key(pod)
        if key in self._by_pod:
            self.remove(pod)
        reqs = _requests_milli(pod)
        contribution = _Contribution(
            node_name=node_name,
            requests=reqs,
            nonzero=_nonzero_cpu_memory(reqs),
            anti_terms=_required_terms(pod, "podAntiAffinity"),
        )
        self._by_pod[key] = contribution
        if contribution.anti_terms:
            self._anti[key] = contribution
        self._apply(contribution, 1)

    def remove(self, pod: Mapping[str, Any]) -> None:
        """Stop counting ``pod``; a pod that was never added is ignored."""
        key = _pod_key(pod)
        contribution = self._by_pod.pop(key, None)
        if contribution is None:
            return
        self._anti.pop(key, None)
        self._apply(contribution, -1)

    def _apply(self, c: _Contribution, sign: int) -> None:
        requested = self._requested.setdefault(c.node_name, {})
        for name, q in c.requests.items():
            requested[name] = requested.get(name, 0) + sign * q
        nonzero = self._nonzero.setdefault(c.node_name, [0, 0])
        nonzero[0] += sign * c.nonzero[0]
        nonzero[1] += sign * c.nonzero[1]
        self._pod_count[c.node_name] = self._pod_count.get(c.node_name, 0) + sign

    def requested(self, node_name: str) -> dict[str, Decimal]:
        """Summed requests on a node (exact to the milli-unit)."""
        return {n: from_millis(q) for n, q in self._requested.get(node_name, {}).items() if q}

    def pod_count(self, node_name: str) -> int:
        return self._pod_count.get(node_name, 0)

    def _node_facts(self, node: Mapping[str, Any]) -> _NodeFacts:
        md = node.get("metadata") or {}
        name = md.get("name", "")
        version = md.get("resourceVersion")
        cached = self._facts.get(name)
        # Holding the dict in the cache keeps its id from being reused, so identity is a safe freshness check.
        if cached is not None and cached[0] is node and cached[1] == version:
            return cached[2]
        facts = _NodeFacts.of(node)
        self._facts[name] = (node, version, facts)
        return facts


# ---------------------------------------------------------------------------------------------------- the pod


@dataclass(frozen=True, slots=True, kw_only=True)
class _Spread:
    selector: _Selector | None
    topology_key: str
    max_skew: int
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


def _spread_constraints(pod: Mapping[str, Any], mode: str) -> tuple[_Spread, ...]:
    labels = _labels(pod)
    out = []
    for c in (pod.get("spec") or {}).get("topologySpreadConstraints") or ():
        if c.get("whenUnsatisfiable", "DoNotSchedule") != mode:
            continue
        selector = _compile_label_selector(c.get("labelSelector"))
        keys = [k for k in c.get("matchLabelKeys") or () if k in labels]
        if selector is not None and keys:
            # matchLabelKeys: ANDed with the selector using the incoming pod's own values (e.g. pod-template-hash).
            selector = selector + tuple((k, "In", frozenset((labels[k],))) for k in keys)
        out.append(
            _Spread(
                selector=selector,
                topology_key=c.get("topologyKey", ""),
                max_skew=int(c.get("maxSkew", 1)),
                min_domains=int(c.get("minDomains") or 1),
                honor_affinity=c.get("nodeAffinityPolicy", "Honor") == "Honor",
                honor_taints=c.get("nodeTaintsPolicy", "Ignore") == "Honor",
            )
        )
    return tuple(out)


def _bound_pods(
    nodes: Sequence[_NodeFacts], pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]]
) -> Iterable[tuple[_NodeFacts, Mapping[str, Any]]]:
    """Non-terminal pods on the nodes being considered (kube's snapshot only knows pods on known nodes)."""
    for facts in nodes:
        for pod in pods_by_node.get(facts.name, ()):
            if not _is_terminal(pod):
                yield facts, pod


class _PodPlan:
    """Everything about the incoming pod the per-node loop needs, computed once per scheduling attempt."""

    __slots__ = (
        "anti_affinity_counts",
        "existing_anti_counts",
        "hard_spread",
        "hard_spread_counts",
        "hard_spread_min",
        "has_node_affinity",
        "labels",
        "namespace",
        "node_selector",
        "nonzero",
        "pod_affinity_counts",
        "pod_affinity_first",
        "preferred_affinity",
        "preferred_anti",
        "preferred_node_terms",
        "preferred_pod_keys",
        "preferred_pod_scores",
        "requests",
        "required_affinity",
        "required_anti",
        "required_node_terms",
        "soft_spread",
        "soft_spread_counts",
        "soft_tolerations",
        "tolerations",
    )

    def __init__(self, pod: Mapping[str, Any]) -> None:
        spec = pod.get("spec") or {}
        self.labels = _labels(pod)
        self.namespace = _namespace(pod)
        self.requests = _requests_milli(pod)
        self.nonzero = _nonzero_cpu_memory(self.requests)
        self.tolerations: Sequence[Mapping[str, Any]] = spec.get("tolerations") or ()
        self.node_selector: Mapping[str, str] = spec.get("nodeSelector") or {}
        node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
        required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
        self.required_node_terms: tuple[_NodeTerm, ...] | None = (
            None if required is None else _node_terms(required.get("nodeSelectorTerms") or ())
        )
        self.has_node_affinity = bool(self.node_selector) or self.required_node_terms is not None
        self.preferred_node_terms = tuple(
            (int(p.get("weight", 0)), term)
            for p in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
            if (term := _NodeTerm.parse(p.get("preference") or {})) is not None
        )
        # Only tolerations with effect PreferNoSchedule or no effect count for scoring (kube TaintToleration).
        self.soft_tolerations = [
            t for t in self.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"
        ]
        self.preferred_affinity = _preferred_terms(pod, "podAffinity")
        self.preferred_anti = _preferred_terms(pod, "podAntiAffinity")
        self.required_affinity = _required_terms(pod, "podAffinity")
        self.required_anti = _required_terms(pod, "podAntiAffinity")
        self.hard_spread = _spread_constraints(pod, "DoNotSchedule")
        self.soft_spread = _spread_constraints(pod, "ScheduleAnyway")
        self.pod_affinity_counts: dict[tuple[str, str], int] = {}
        self.pod_affinity_first = False
        self.anti_affinity_counts: dict[tuple[str, str], int] = {}
        self.existing_anti_counts: dict[tuple[str, str], int] = {}
        self.hard_spread_counts: list[dict[str, int]] = []
        self.hard_spread_min: list[int] = []
        self.soft_spread_counts: list[dict[str, int]] = []
        self.preferred_pod_scores: dict[tuple[str, str], int] = {}
        self.preferred_pod_keys: tuple[str, ...] = ()

    def node_affinity_ok(self, facts: _NodeFacts) -> bool:
        labels = facts.labels
        for key, value in self.node_selector.items():
            if labels.get(key) != value:
                return False
        if self.required_node_terms is None:
            return True
        return any(term.matches(facts.name, labels) for term in self.required_node_terms)

    def prepare(
        self,
        nodes: Sequence[_NodeFacts],
        pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]],
        usage: NodeUsage,
        ns_labels: _NamespaceLabels,
    ) -> None:
        """The PreFilter/PreScore work: counts over bound pods, done only for the rules the pod actually uses."""
        if self.required_affinity or self.required_anti:
            self._count_inter_pod(nodes, pods_by_node, ns_labels)
        if usage._anti:
            self._count_existing_anti(nodes, usage, ns_labels)
        if self.hard_spread:
            self._count_hard_spread(nodes, pods_by_node)
        if self.soft_spread:
            self.soft_spread_counts = [self._spread_counts(c, nodes, pods_by_node) for c in self.soft_spread]
        preferred = [(t, 1) for t in self.preferred_affinity] + [(t, -1) for t in self.preferred_anti]
        if preferred:
            self._count_preferred(preferred, nodes, pods_by_node, ns_labels)

    def _count_inter_pod(
        self,
        nodes: Sequence[_NodeFacts],
        pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]],
        ns_labels: _NamespaceLabels,
    ) -> None:
        for facts, other in _bound_pods(nodes, pods_by_node):
            ns, labels = _namespace(other), _labels(other)
            # Affinity counts a pod only if it matches ALL terms; anti-affinity counts per matching term (kube).
            if self.required_affinity and all(t.matches(ns, labels, ns_labels) for t in self.required_affinity):
                for term in self.required_affinity:
                    value = facts.labels.get(term.topology_key)
                    if value is not None:
                        pair = (term.topology_key, value)
                        self.pod_affinity_counts[pair] = self.pod_affinity_counts.get(pair, 0) + 1
            for term in self.required_anti:
                value = facts.labels.get(term.topology_key)
                if value is not None and term.matches(ns, labels, ns_labels):
                    pair = (term.topology_key, value)
                    self.anti_affinity_counts[pair] = self.anti_affinity_counts.get(pair, 0) + 1
        # The first pod of a group with affinity to itself may go anywhere with the topology keys (kube special
        # case), or a self-affine StatefulSet could never start.
        self.pod_affinity_first = not self.pod_affinity_counts and all(
            t.matches(self.namespace, self.labels, ns_labels) for t in self.required_affinity
        )

    def _count_existing_anti(self, nodes: Sequence[_NodeFacts], usage: NodeUsage, ns_labels: _NamespaceLabels) -> None:
        by_name = {f.name: f for f in nodes}
        for contribution in usage._anti.values():
            facts = by_name.get(contribution.node_name)
            if facts is None:
                continue
            for term in contribution.anti_terms:
                value = facts.labels.get(term.topology_key)
                if value is not None and term.matches(self.namespace, self.labels, ns_labels):
                    pair = (term.topology_key, value)
                    self.existing_anti_counts[pair] = self.existing_anti_counts.get(pair, 0) + 1

    def _spread_counts(
        self,
        constraint: _Spread,
        nodes: Iterable[_NodeFacts],
        pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        for facts in nodes:
            value = facts.labels.get(constraint.topology_key)
            if value is None:
                continue
            n = counts.get(value, 0)
            for other in pods_by_node.get(facts.name, ()):
                md = other.get("metadata") or {}
                # Terminating pods do not count towards spreading (kube: countPodsMatchSelector).
                if _is_terminal(other) or md.get("deletionTimestamp") or _namespace(other) != self.namespace:
                    continue
                if _matches(constraint.selector, md.get("labels") or {}):
                    n += 1
            counts[value] = n
        return counts

    def _count_hard_spread(
        self, nodes: Sequence[_NodeFacts], pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]]
    ) -> None:
        keys = [c.topology_key for c in self.hard_spread]
        # Domains come from nodes with every constraint's key that pass the pod's node affinity (policy Honor) and,
        # if asked, its taints; a node outside them can still be chosen but contributes no domain of its own.
        labelled = [f for f in nodes if all(k in f.labels for k in keys)]
        for c in self.hard_spread:
            eligible = [
                f
                for f in labelled
                if (not c.honor_affinity or self.node_affinity_ok(f))
                and (not c.honor_taints or not any(not _tolerated(self.tolerations, t) for t in f.hard_taints))
            ]
            counts = self._spread_counts(c, eligible, pods_by_node)
            self.hard_spread_counts.append(counts)
            minimum = min(counts.values()) if counts else 0
            if len(counts) < c.min_domains:
                minimum = 0  # fewer domains than minDomains: the global minimum is taken as 0
            self.hard_spread_min.append(minimum)

    def _count_preferred(
        self,
        terms: Sequence[tuple[_PodTerm, int]],
        nodes: Sequence[_NodeFacts],
        pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]],
        ns_labels: _NamespaceLabels,
    ) -> None:
        scores: dict[tuple[str, str], int] = {}
        for facts, other in _bound_pods(nodes, pods_by_node):
            ns, labels = _namespace(other), _labels(other)
            for term, sign in terms:
                value = facts.labels.get(term.topology_key)
                if value is not None and term.matches(ns, labels, ns_labels):
                    pair = (term.topology_key, value)
                    scores[pair] = scores.get(pair, 0) + sign * term.weight
        self.preferred_pod_scores = scores
        self.preferred_pod_keys = tuple(sorted({t.topology_key for t, _ in terms}))

    # ------------------------------------------------------------------------------------------------ filters

    def spread_reason(self, facts: _NodeFacts) -> str | None:
        for i, c in enumerate(self.hard_spread):
            value = facts.labels.get(c.topology_key)
            if value is None:
                return REASON_SPREAD_MISSING_LABEL
            self_match = 1 if _matches(c.selector, self.labels) else 0
            if self.hard_spread_counts[i].get(value, 0) + self_match - self.hard_spread_min[i] > c.max_skew:
                return REASON_SPREAD
        return None

    def inter_pod_reason(self, facts: _NodeFacts) -> str | None:
        labels = facts.labels
        if self.required_affinity:
            present = True
            for term in self.required_affinity:
                value = labels.get(term.topology_key)
                if value is None:
                    return REASON_POD_AFFINITY  # every topology key must exist on the node
                if self.pod_affinity_counts.get((term.topology_key, value), 0) <= 0:
                    present = False
            if not present and not self.pod_affinity_first:
                return REASON_POD_AFFINITY
        if self.anti_affinity_counts:
            for term in self.required_anti:
                value = labels.get(term.topology_key)
                if value is not None and self.anti_affinity_counts.get((term.topology_key, value), 0) > 0:
                    return REASON_POD_ANTI_AFFINITY
        if self.existing_anti_counts:
            for (key, value), count in self.existing_anti_counts.items():
                if count > 0 and labels.get(key) == value:
                    return REASON_EXISTING_ANTI_AFFINITY
        return None

    # ------------------------------------------------------------------------------------------------ scoring

    def score_key(self, facts: _NodeFacts, usage: NodeUsage) -> tuple[int, int, int, int, float, str]:
        """Sort key of a feasible node, smallest wins; the rules a pod does not use cost nothing per node."""
        labels = facts.labels
        node_pref = pod_pref = soft_taints = skew = 0
        if self.preferred_node_terms:
            node_pref = sum(w for w, term in self.preferred_node_terms if term.matches(facts.name, labels))
        for key in self.preferred_pod_keys:
            value = labels.get(key)
            if value is not None:
                pod_pref += self.preferred_pod_scores.get((key, value), 0)
        if facts.soft_taints:
            soft_taints = sum(1 for t in facts.soft_taints if not _tolerated(self.soft_tolerations, t))
        for i, c in enumerate(self.soft_spread):
            value = labels.get(c.topology_key)
            skew += _MISSING_DOMAIN if value is None else self.soft_spread_counts[i].get(value, 0)
        used = usage._nonzero.get(facts.name, _NO_USAGE)
        cpu = (used[0] + self.nonzero[0]) / facts.cpu if facts.cpu > 0 else 1.0
        memory = (used[1] + self.nonzero[1]) / facts.memory if facts.memory > 0 else 1.0
        return (-node_pref, -pod_pref, soft_taints, skew, (cpu + memory) / 2, facts.name)


# ---------------------------------------------------------------------------------------------------- schedule


def schedule(
    pod: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    usage: NodeUsage | None = None,
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> Decision:
    """Choose a node for ``pod`` among ``nodes``, or explain in kube's words why none fits.

    ``pods_by_node`` holds the pods bound to each node (terminal ones are ignored); it is read for inter-pod
    affinity and topology spreading. ``usage``, when given, must describe the same bound pods; it is what keeps a
    long run of scheduling calls cheap. ``namespace_labels`` feeds namespaceSelector in affinity terms; without
    it a namespace only carries ``kubernetes.io/metadata.name``.
    """
    spec = pod.get("spec") or {}
    md = pod.get("metadata") or {}
    pod_ref = f"{md.get('namespace') or 'default'}/{md.get('name', '')}"
    bound = spec.get("nodeName")
    if bound:
        # The API binds such a pod directly; kube-scheduler never sees it, so nothing is filtered.
        return Decision(node_name=bound, message=_assigned(pod_ref, bound), reasons={})
    if spec.get("schedulingGates"):
        return Decision(node_name=None, message=SCHEDULING_GATED_MESSAGE, reasons={})
    if not nodes:
        return Decision(node_name=None, message=NO_NODES_MESSAGE, reasons={})
    if usage is None:
        usage = NodeUsage.from_pods(pods_by_node)
    all_facts = [usage._node_facts(node) for node in nodes]
    plan = _PodPlan(pod)
    plan.prepare(all_facts, pods_by_node, usage, _NamespaceLabels(namespace_labels))
    checks_inter_pod = bool(plan.required_affinity or plan.anti_affinity_counts or plan.existing_anti_counts)
    demands = sorted(plan.requests.items(), key=lambda kv: (_NATIVE_ORDER.get(kv[0], 3), kv[0]))
    demand_reasons = [(name, q, insufficient(name)) for name, q in demands]

    reasons: dict[str, int] = {}
    preemption: dict[str, int] = {}
    best: tuple[int, int, int, int, float, str] | None = None
    for facts in all_facts:
        failed = _first_failure(plan, facts, usage, demand_reasons, checks_inter_pod)
        if failed:
            for reason in failed:
                reasons[reason] = reasons.get(reason, 0) + 1
            verdict = PREEMPTION_NOT_HELPFUL if _unresolvable(failed[0]) else PREEMPTION_NO_VICTIMS
            preemption[verdict] = preemption.get(verdict, 0) + 1
            continue
        key = plan.score_key(facts, usage)
        if best is None or key < best:
            best = key

    if best is not None:
        log.debug("pod %s -> node %s (score key %s)", pod_ref, best[-1], best[:-1])
        return Decision(node_name=best[-1], message=_assigned(pod_ref, best[-1]), reasons={})
    total = len(all_facts)
    if spec.get("preemptionPolicy") == "Never":
        post_filter = "preemption: not eligible due to preemptionPolicy=Never."
    else:
        post_filter = f"preemption: 0/{total} nodes are available: {_histogram(preemption)}."
    message = f"0/{total} nodes are available: {_histogram(reasons)}. {post_filter}"
    log.debug("pod %s unschedulable: %s", pod_ref, message)
    return Decision(node_name=None, message=message, reasons=reasons)


def _first_failure(
    plan: _PodPlan,
    facts: _NodeFacts,
    usage: NodeUsage,
    demands: Sequence[tuple[str, int, str]],
    checks_inter_pod: bool,
) -> list[str] | None:
    """Reasons of the first filter (in kube's order) that rejects the node; None when the node is feasible."""
    tolerations = plan.tolerations
    if facts.unschedulable and not _tolerated(tolerations, _UNSCHEDULABLE_TAINT):
        return [REASON_UNSCHEDULABLE]
    for taint in facts.hard_taints:
        if not _tolerated(tolerations, taint):
            return [untolerated_taint(taint.get("key", ""), taint.get("value", ""))]
    if plan.has_node_affinity and not plan.node_affinity_ok(facts):
        return [REASON_NODE_AFFINITY]
    # NodeResourcesFit reports every short resource of the node, not just the first.
    short: list[str] = []
    allocatable = facts.allocatable
    if usage._pod_count.get(facts.name, 0) >= facts.max_pods:
        short.append(REASON_TOO_MANY_PODS)
    requested = usage._requested.get(facts.name)
    for name, quantity, reason in demands:
        if quantity > allocatable.get(name, 0) - (requested.get(name, 0) if requested else 0):
            short.append(reason)
    if short:
        return short
    if plan.hard_spread:
        reason = plan.spread_reason(facts)
        if reason is not None:
            return [reason]
    if checks_inter_pod:
        reason = plan.inter_pod_reason(facts)
        if reason is not None:
            return [reason]
    return None


def _unresolvable(reason: str) -> bool:
    """Whether kube marks this reason UnschedulableAndUnresolvable, i.e. preemption would not help."""
    return reason in _UNRESOLVABLE_FIXED or reason.startswith(_TAINT_PREFIX) or reason == REASON_SPREAD_MISSING_LABEL


def _histogram(counts: Mapping[str, int]) -> str:
    """FitError's reason list: "<count> <reason>" strings sorted as plain strings (Go's sort.Strings)."""
    return ", ".join(sorted(f"{count} {reason}" for reason, count in counts.items()))


def _assigned(pod_ref: str, node_name: str) -> str:
    return f"Successfully assigned {pod_ref} to {node_name}"
