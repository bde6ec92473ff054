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

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.embedded.podstate import pod_terminal
from harness.embedded.schedule_terms import (
    NamespaceLabels,
    NodeFacts,
    NodeTerm,
    PodTerm,
    Selector,
    compile_label_selector,
    labels_of,
    namespace_of,
    node_terms,
    preferred_terms,
    required_terms,
    selector_matches,
    tolerated,
)
from harness.embedded.schedule_usage import NodeUsage, nonzero_cpu_memory, pod_requests, requests_milli

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

_UNSCHEDULABLE_TAINT: Obj = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
# Kube's scoring treats a container without requests as asking for 100m CPU and 200Mi memory
# (pkg/scheduler/util.GetNonzeroRequests) so that best-effort pods still spread instead of piling on one node.
_NATIVE_ORDER = {"cpu": 0, "memory": 1, "ephemeral-storage": 2}
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


# ---------------------------------------------------------------------------------------------------- the pod


@dataclass(frozen=True, slots=True, kw_only=True)
class _Spread:
    selector: Selector | None
    topology_key: str
    max_skew: int
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


def _spread_constraints(pod: Mapping[str, Any], mode: str) -> tuple[_Spread, ...]:
    labels = labels_of(pod)
    out = []
    for c in (pod.get("spec") or {}).get("topologySpreadConstraints") or ():
        if c.get("whenUnsatisfiable", "DoNotSchedule") != mode:
            continue
        selector = compile_label_selector(c.get("labelSelector"))
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
    nodes: Sequence[NodeFacts], pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]]
) -> Iterable[tuple[NodeFacts, Mapping[str, Any]]]:
    """Non-terminal pods on the nodes being considered (kube's snapshot only knows pods on known nodes)."""
    for facts in nodes:
        for pod in pods_by_node.get(facts.name, ()):
            if not pod_terminal(pod):
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
        self.labels = labels_of(pod)
        self.namespace = namespace_of(pod)
        self.requests = requests_milli(pod)
        self.nonzero = nonzero_cpu_memory(self.requests)
        self.tolerations: Sequence[Mapping[str, Any]] = spec.get("tolerations") or ()
        self.node_selector: Mapping[str, str] = spec.get("nodeSelector") or {}
        node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
        required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
        self.required_node_terms: tuple[NodeTerm, ...] | None = (
            None if required is None else node_terms(required.get("nodeSelectorTerms") or ())
        )
        self.has_node_affinity = bool(self.node_selector) or self.required_node_terms is not None
        self.preferred_node_terms = tuple(
            (int(p.get("weight", 0)), term)
            for p in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
            if (term := NodeTerm.parse(p.get("preference") or {})) is not None
        )
        # Only tolerations with effect PreferNoSchedule or no effect count for scoring (kube TaintToleration).
        self.soft_tolerations = [
            t for t in self.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"
        ]
        self.preferred_affinity = preferred_terms(pod, "podAffinity")
        self.preferred_anti = preferred_terms(pod, "podAntiAffinity")
        self.required_affinity = required_terms(pod, "podAffinity")
        self.required_anti = required_terms(pod, "podAntiAffinity")
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

    def node_affinity_ok(self, facts: NodeFacts) -> bool:
        labels = facts.labels
        for key, value in self.node_selector.items():
            if labels.get(key) != value:
                return False
        if self.required_node_terms is None:
            return True
        return any(term.matches(facts.name, labels) for term in self.required_node_terms)

    def prepare(
        self,
        nodes: Sequence[NodeFacts],
        pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]],
        usage: NodeUsage,
        ns_labels: NamespaceLabels,
    ) -> None:
        """The PreFilter/PreScore work: counts over bound pods, done only for the rules the pod actually uses."""
        if self.required_affinity or self.required_anti:
            self._count_inter_pod(nodes, pods_by_node, ns_labels)
        if usage.anti_affinity():
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
        nodes: Sequence[NodeFacts],
        pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]],
        ns_labels: NamespaceLabels,
    ) -> None:
        for facts, other in _bound_pods(nodes, pods_by_node):
            ns, labels = namespace_of(other), labels_of(other)
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

    def _count_existing_anti(self, nodes: Sequence[NodeFacts], usage: NodeUsage, ns_labels: NamespaceLabels) -> None:
        by_name = {f.name: f for f in nodes}
        for contribution in usage.anti_affinity():
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
        nodes: Iterable[NodeFacts],
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
                if pod_terminal(other) or md.get("deletionTimestamp") or namespace_of(other) != self.namespace:
                    continue
                if selector_matches(constraint.selector, md.get("labels") or {}):
                    n += 1
            counts[value] = n
        return counts

    def _count_hard_spread(
        self, nodes: Sequence[NodeFacts], pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]]
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
                and (not c.honor_taints or not any(not tolerated(self.tolerations, t) for t in f.hard_taints))
            ]
            counts = self._spread_counts(c, eligible, pods_by_node)
            self.hard_spread_counts.append(counts)
            minimum = min(counts.values()) if counts else 0
            if len(counts) < c.min_domains:
                minimum = 0  # fewer domains than minDomains: the global minimum is taken as 0
            self.hard_spread_min.append(minimum)

    def _count_preferred(
        self,
        terms: Sequence[tuple[PodTerm, int]],
        nodes: Sequence[NodeFacts],
        pods_by_node: Mapping[str, Sequence[Mapping[str, Any]]],
        ns_labels: NamespaceLabels,
    ) -> None:
        scores: dict[tuple[str, str], int] = {}
        for facts, other in _bound_pods(nodes, pods_by_node):
            ns, labels = namespace_of(other), labels_of(other)
            for term, sign in terms:
                value = facts.labels.get(term.topology_key)
                if value is not None and term.matches(ns, labels, ns_labels):
                    pair = (term.topology_key, value)
                    scores[pair] = scores.get(pair, 0) + sign * term.weight
        self.preferred_pod_scores = scores
        self.preferred_pod_keys = tuple(sorted({t.topology_key for t, _ in terms}))

    # ------------------------------------------------------------------------------------------------ filters

    def spread_reason(self, facts: NodeFacts) -> str | None:
        for i, c in enumerate(self.hard_spread):
            value = facts.labels.get(c.topology_key)
            if value is None:
                return REASON_SPREAD_MISSING_LABEL
            self_match = 1 if selector_matches(c.selector, self.labels) else 0
            if self.hard_spread_counts[i].get(value, 0) + self_match - self.hard_spread_min[i] > c.max_skew:
                return REASON_SPREAD
        return None

    def inter_pod_reason(self, facts: NodeFacts) -> str | None:
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

    def score_key(self, facts: NodeFacts, usage: NodeUsage) -> tuple[int, int, int, int, float, str]:
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
            soft_taints = sum(1 for t in facts.soft_taints if not tolerated(self.soft_tolerations, t))
        for i, c in enumerate(self.soft_spread):
            value = labels.get(c.topology_key)
            skew += _MISSING_DOMAIN if value is None else self.soft_spread_counts[i].get(value, 0)
        used = usage.nonzero(facts.name)
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
    all_facts = [usage.node_facts(node) for node in nodes]
    plan = _PodPlan(pod)
    plan.prepare(all_facts, pods_by_node, usage, NamespaceLabels(namespace_labels))
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
    facts: NodeFacts,
    usage: NodeUsage,
    demands: Sequence[tuple[str, int, str]],
    checks_inter_pod: bool,
) -> list[str] | None:
    """Reasons of the first filter (in kube's order) that rejects the node; None when the node is feasible."""
    tolerations = plan.tolerations
    if facts.unschedulable and not tolerated(tolerations, _UNSCHEDULABLE_TAINT):
        return [REASON_UNSCHEDULABLE]
    for taint in facts.hard_taints:
        if not tolerated(tolerations, taint):
            return [untolerated_taint(taint.get("key", ""), taint.get("value", ""))]
    if plan.has_node_affinity and not plan.node_affinity_ok(facts):
        return [REASON_NODE_AFFINITY]
    # NodeResourcesFit reports every short resource of the node, not just the first.
    short: list[str] = []
    allocatable = facts.allocatable
    if usage.pod_count(facts.name) >= facts.max_pods:
        short.append(REASON_TOO_MANY_PODS)
    requested = usage.requested_milli(facts.name)
    for name, quantity, reason in demands:
        if quantity > allocatable.get(name, 0) - (requested.get(name, 0) if requested else 0):
            short.append(reason)
    if short:
        return short
    if plan.hard_spread and (spread := plan.spread_reason(facts)) is not None:
        return [spread]
    if checks_inter_pod and (inter_pod := plan.inter_pod_reason(facts)) is not None:
        return [inter_pod]
    return None


def _unresolvable(reason: str) -> bool:
    """Whether kube marks this reason UnschedulableAndUnresolvable, i.e. preemption would not help."""
    return reason in _UNRESOLVABLE_FIXED or reason.startswith(_TAINT_PREFIX) or reason == REASON_SPREAD_MISSING_LABEL


def _histogram(counts: Mapping[str, int]) -> str:
    """FitError's reason list: "<count> <reason>" strings sorted as plain strings (Go's sort.Strings)."""
    return ", ".join(sorted(f"{count} {reason}" for reason, count in counts.items()))


def _assigned(pod_ref: str, node_name: str) -> str:
    return f"Successfully assigned {pod_ref} to {node_name}"
