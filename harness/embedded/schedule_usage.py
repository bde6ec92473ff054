"""What a pod requests and what each node already carries: requests as the scheduler counts them (the larger of
the containers' sum and the largest init container, plus overhead; limits standing in for missing requests), in
integer milli-units, and :class:`NodeUsage`, the running per-node sums of bound pods that keep one scheduling
decision O(nodes) at 10,000 pods.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from harness.embedded.podstate import pod_terminal
from harness.embedded.schedule_terms import NodeFacts, PodTerm, required_terms
from harness.quantity import EXACT, from_millis, parse_quantity

DEFAULT_CPU_MILLI = 100
DEFAULT_MEMORY_MILLI = 200 * 1024 * 1024 * 1000
NO_USAGE = (0, 0)


# --------------------------------------------------------------------------------------------------- quantities


def _container_requests(container: Mapping[str, Any]) -> dict[str, Decimal]:
    """Requests of one container, with limits standing in for missing requests (API server defaulting)."""
    resources = container.get("resources") or {}
    out = {name: parse_quantity(quantity_text(q)) for name, q in (resources.get("limits") or {}).items()}
    for name, q in (resources.get("requests") or {}).items():
        out[name] = parse_quantity(quantity_text(q))
    return out


def quantity_text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _add_into(total: dict[str, Decimal], extra: Mapping[str, Decimal]) -> None:
    for name, q in extra.items():
        total[name] = EXACT.add(total.get(name, Decimal(0)), q)


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
    _add_into(total, {name: parse_quantity(quantity_text(q)) for name, q in (spec.get("overhead") or {}).items()})
    return {name: q for name, q in total.items() if q != 0}


def requests_milli(pod: Mapping[str, Any]) -> dict[str, int]:
    return {name: math.ceil(q * 1000) for name, q in pod_requests(pod).items()}


def nonzero_cpu_memory(reqs: Mapping[str, int]) -> tuple[int, int]:
    return reqs.get("cpu") or DEFAULT_CPU_MILLI, reqs.get("memory") or DEFAULT_MEMORY_MILLI


def pod_key(pod: Mapping[str, Any]) -> str:
    md = pod.get("metadata") or {}
    uid = md.get("uid")
    if uid:
        return str(uid)
    return f"{md.get('namespace', 'default')}/{md.get('name', '')}"


# ------------------------------------------------------------------------------------------------------- usage


@dataclass(frozen=True, slots=True, kw_only=True)
class Contribution:
    node_name: str
    requests: Mapping[str, int]
    nonzero: tuple[int, int]
    anti_terms: tuple[PodTerm, ...]


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
        self._by_pod: dict[str, Contribution] = {}
        self._anti: dict[str, Contribution] = {}
        self._facts: dict[str, tuple[Mapping[str, Any], object, NodeFacts]] = {}

    @classmethod
    def from_pods(cls, pods_by_node: Mapping[str, Iterable[Mapping[str, Any]]]) -> NodeUsage:
        """Sum the non-terminal pods already bound to each node."""
        usage = cls()
        for node_name, pods in pods_by_node.items():
            for pod in pods:
                if not pod_terminal(pod):
                    usage.add(node_name, pod)
        return usage

    def add(self, node_name: str, pod: Mapping[str, Any]) -> None:
        """Count ``pod`` as bound to ``node_name`` (moving it if it was counted elsewhere)."""
        key = pod_key(pod)
        if key in self._by_pod:
            self.remove(pod)
        reqs = requests_milli(pod)
        contribution = Contribution(
            node_name=node_name,
            requests=reqs,
            nonzero=nonzero_cpu_memory(reqs),
            anti_terms=required_terms(pod, "podAntiAffinity"),
        )
        self._by_pod[key] = contribution
        if contribution.anti_terms:
            self._anti[key] = contribution
        self._apply(contribution, 1)

    def remove(self, pod: Mapping[str, Any]) -> None:
        """Stop counting ``pod``; a pod that was never added is ignored."""
        key = pod_key(pod)
        contribution = self._by_pod.pop(key, None)
        if contribution is None:
            return
        self._anti.pop(key, None)
        self._apply(contribution, -1)

    def _apply(self, c: Contribution, sign: int) -> None:
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

    def requested_milli(self, node_name: str) -> Mapping[str, int] | None:
        """Summed requests on a node in milli-units (None: nothing was ever bound there)."""
        return self._requested.get(node_name)

    def nonzero(self, node_name: str) -> tuple[int, int]:
        """Summed cpu/memory with kube's non-zero defaults for pods that request none (for least-allocated)."""
        used = self._nonzero.get(node_name)
        return (used[0], used[1]) if used is not None else NO_USAGE

    def anti_affinity(self) -> Iterable[Contribution]:
        """The bound pods with required anti-affinity, which every incoming pod is checked against."""
        return self._anti.values()

    def node_facts(self, node: Mapping[str, Any]) -> NodeFacts:
        md = node.get("metadata") or {}
        name = md.get("name", "")
        version = md.get("resourceVersion")
        cached = self._facts.get(name)
        # Holding the dict in the cache keeps its id from being reused, so identity is a safe freshness check.
        if cached is not None and cached[0] is node and cached[1] == version:
            return cached[2]
        facts = NodeFacts.of(node)
        self._facts[name] = (node, version, facts)
        return facts
