"""Optional cluster spec file: emulated nodes beside the real host (DESIGN.md section 4).

Scheduler, topology and scale tests need many nodes with GPUs, RDMA and topology labels that one machine does not
have. A cluster spec adds node pools that exist only in the API (pods bound to them still run on the host, and
results say so through the ``aibench.io/emulated`` label). The file is YAML::

    apiVersion: aibench.io/v1
    kind: ClusterSpec
    host: {include: true, labels: {...}, taints: [...]}
    nodePools:
      - name: gpu-a                  # nodes gpu-a-0 .. gpu-a-3
        count: 4
        capacity: {cpu: "96", memory: 1Ti, nvidia.com/gpu: "8", rdma/ib: "8"}
        labels: {topology.kubernetes.io/zone: z1}
        taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
        topology: {block: b1, rack: "r{i//2}"}

In ``topology`` and ``labels`` values, ``{i}`` is the node index and ``{i//N}`` the index divided by N (racks of N).
Loading is strict, because a typo in a spec silently changes what a scheduling test measures: every error is a
:class:`ClusterSpecError` naming the file and the key path.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from harness.embedded.inventory import (
    DEFAULT_MAX_PODS,
    GPU_RESOURCE,
    base_labels,
    build_node,
    kube_arch,
    node_info,
)
from harness.embedded.names import (
    is_c_identifier,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name_part,
)
from harness.errors import ClusterSpecError
from harness.quantity import parse_quantity
from harness.yamlfile import StrictLoader

__all__ = [
    "API_VERSION",
    "EMULATED_ANNOTATION",
    "EMULATED_LABEL",
    "EMULATED_NODE_NETWORK",
    "KIND",
    "MAX_POOL_COUNT",
    "NODE_POOL_LABEL",
    "TOPOLOGY_LABELS",
    "ClusterSpec",
    "ClusterSpecError",
    "HostSpec",
    "NodePool",
    "Taint",
    "all_nodes",
    "apply_host_overrides",
    "emulated_nodes",
    "load_cluster_spec",
    "parse_cluster_spec",
]

logger = logging.getLogger(__name__)

API_VERSION = "aibench.io/v1"
KIND = "ClusterSpec"
MAX_POOL_COUNT = 5000
"""Kubernetes' documented scale limit per cluster; more per pool is surely a typo."""

EMULATED_LABEL = "aibench.io/emulated"
EMULATED_ANNOTATION = "aibench.io/emulated"
NODE_POOL_LABEL = "aibench.io/node-pool"

EMULATED_NODE_NETWORK = ipaddress.IPv4Network("127.1.0.0/16")
"""Emulated nodes' InternalIPs: inside loopback so nothing leaves the host, apart from 127.0.0.1 (the real node)."""

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
TAINT_EFFECTS: tuple[str, ...] = get_args(TaintEffect)

TOPOLOGY_LABELS: dict[str, str] = {
    "region": "topology.kubernetes.io/region",
    "zone": "topology.kubernetes.io/zone",
    "datacenter": "network.topology.kubernetes.io/datacenter",
    "spine": "network.topology.kubernetes.io/spine",
    "block": "network.topology.kubernetes.io/block",
    "rack": "network.topology.kubernetes.io/rack",
    "accelerator": "network.topology.kubernetes.io/accelerator",
}
"""``topology`` shortcut keys and the node labels they set (well-known zone/region, network topology for the rest)."""

_INDEX_RE = re.compile(r"\{i(?://([1-9][0-9]*))?\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Taint:
    """A node taint as in ``v1.Taint`` (without timeAdded)."""

    key: str
    value: str = ""
    effect: TaintEffect

    def as_dict(self) -> dict[str, str]:
        """The ``spec.taints`` entry; ``value`` omitted when empty, as the API server would."""
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSpec:
    """Tweaks to the real host node; ``include: false`` leaves only emulated nodes (pure scheduling tests)."""

    include: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePool:
    """``count`` identical emulated nodes named ``<name>-<i>``; label values may use ``{i}`` / ``{i//N}``."""

    name: str
    count: int
    capacity: Mapping[str, str]
    allocatable: Mapping[str, str] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    topology: Mapping[str, str] = field(default_factory=dict)

    def node_name(self, index: int) -> str:
        """Name of the node at ``index``; unique across pools because pool names are unique and end before '-<i>'."""
        return f"{self.name}-{index}"

    def labels_for(self, index: int) -> dict[str, str]:
        """Pool labels plus topology labels, with ``{i}`` templates expanded for node ``index``."""
        merged = {TOPOLOGY_LABELS[k]: v for k, v in self.topology.items()}
        merged.update(self.labels)
        return {k: _expand(v, index) for k, v in merged.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSpec:
    """A loaded, validated cluster spec; ``path`` is kept so later errors can still name the file."""

    path: Path | None = None
    host: HostSpec = field(default_factory=HostSpec)
    node_pools: tuple[NodePool, ...] = ()

    @property
    def emulated_node_count(self) -> int:
        """Total emulated nodes across pools."""
        return sum(p.count for p in self.node_pools)


def _expand(template: str, index: int) -> str:
    def repl(match: re.Match[str]) -> str:
        divisor = match.group(1)
        return str(index // int(divisor)) if divisor else str(index)

    return _INDEX_RE.sub(repl, template)


# --------------------------------------------------------------------------------------------------------------------
# Loading and validation


def _key(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if is_c_identifier(key):
        return f"{parent}.{key}" if parent else key
    return f'{parent}["{key}"]'


@dataclass(slots=True)
class _Validator:
    """Walks the parsed YAML; carries the file path so every error names it."""

    path: Path

    def fail(self, key_path: str, message: str) -> ClusterSpecError:
        return ClusterSpecError(self.path, key_path, message)

    def mapping(self, value: object, key_path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key_path, f"must be a mapping (got {_type_name(value)})")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(key_path, f"keys must be strings (got {key!r})")
        unknown = [k for k in value if k not in allowed]
        if unknown:
            raise self.fail(_key(key_path, unknown[0]), f"unknown key (allowed: {', '.join(allowed)})")
        return value

    def string(self, value: object, key_path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key_path, f"must be a string (got {_type_name(value)} {value!r}; quote it)")
        return value

    def qualified_name(self, key: str, key_path: str) -> str:
        prefix, slash, name = key.rpartition("/")
        if slash and not is_dns1123_subdomain(prefix):
            raise self.fail(key_path, f"invalid prefix {prefix!r}: must be a lowercase DNS subdomain")
        if not is_qualified_name_part(name):
            raise self.fail(
                key_path, f"invalid name {name!r}: at most 63 alphanumerics, '-', '_' or '.', alphanumeric at both ends"
            )
        return key

    def qualified_items(self, value: object, key_path: str, expected: str) -> Iterator[tuple[str, str, object]]:
        """Each ``(key, key path, value)`` of a mapping keyed by qualified names (labels, resource names)."""
        if not isinstance(value, dict):
            raise self.fail(key_path, f"must be {expected} (got {_type_name(value)})")
        for key, item in value.items():
            sub = _key(key_path, str(key))
            yield self.qualified_name(self.string(key, sub), sub), sub, item

    def label_value(self, value: object, key_path: str, *, template: bool = False) -> str:
        text = self.string(value, key_path)
        probe = _INDEX_RE.sub("0", text) if template else text
        if not is_label_value(probe):
            raise self.fail(
                key_path,
                f"invalid label value {text!r}: at most 63 alphanumerics, '-', '_' or '.', alphanumeric at both ends",
            )
        return text

    def labels(self, value: object, key_path: str, *, template: bool = False) -> dict[str, str]:
        if value is None:
            return {}
        return {
            key: self.label_value(item, sub, template=template)
            for key, sub, item in self.qualified_items(value, key_path, "a mapping")
        }

    def taints(self, value: object, key_path: str) -> tuple[Taint, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(key_path, f"must be a list (got {_type_name(value)})")
        taints: list[Taint] = []
        seen: set[tuple[str, str]] = set()
        for i, item in enumerate(value):
            sub = _key(key_path, i)
            raw = self.mapping(item, sub, ("key", "value", "effect"))
            if "key" not in raw:
                raise self.fail(sub, "missing required key 'key'")
            if "effect" not in raw:
                raise self.fail(sub, "missing required key 'effect'")
            key = self.qualified_name(self.string(raw["key"], _key(sub, "key")), _key(sub, "key"))
            taint_value = self.label_value(raw.get("value", ""), _key(sub, "value"))
            effect = raw["effect"]
            if effect not in TAINT_EFFECTS:
                raise self.fail(_key(sub, "effect"), f"must be one of {', '.join(TAINT_EFFECTS)} (got {effect!r})")
            if (key, effect) in seen:
                raise self.fail(sub, f"duplicate taint {key}:{effect}")
            seen.add((key, effect))
            taints.append(Taint(key=key, value=taint_value, effect=effect))
        return tuple(taints)

    def resources(self, value: object, key_path: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, sub, item in self.qualified_items(value, key_path, "a mapping of resource name to quantity"):
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise self.fail(sub, f'must be a quantity string like "8" or "1Ti" (got {_type_name(item)} {item!r})')
            text = str(item)
            try:
                amount = parse_quantity(text)
            except ValueError as exc:
                raise self.fail(sub, str(exc)) from None
            if amount < 0:
                raise self.fail(sub, f"must not be negative (got {text!r})")
            if "/" in key and amount != amount.to_integral_value():
                raise self.fail(sub, f"extended resources must be whole numbers (got {text!r})")
            out[key] = text
        return out

    def host(self, value: object) -> HostSpec:
        if value is None:
            return HostSpec()
        raw = self.mapping(value, "host", ("include", "labels", "taints"))
        include = raw.get("include", True)
        if not isinstance(include, bool):
            raise self.fail("host.include", f"must be true or false (got {include!r})")
        return HostSpec(
            include=include,
            labels=self.labels(raw.get("labels"), "host.labels"),
            taints=self.taints(raw.get("taints"), "host.taints"),
        )

    def pool(self, value: object, key_path: str) -> NodePool:
        raw = self.mapping(
            value, key_path, ("name", "count", "capacity", "allocatable", "labels", "taints", "topology")
        )
        for required in ("name", "count", "capacity"):
            if required not in raw:
                raise self.fail(key_path, f"missing required key {required!r}")
        name = self.string(raw["name"], _key(key_path, "name"))
        if len(name) > 57 or not is_dns1123_label(name):
            raise self.fail(
                _key(key_path, "name"),
                f"invalid pool name {name!r}: lowercase alphanumerics and '-', at most 57 characters "
                "(node names append '-<index>')",
            )
        count = raw["count"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise self.fail(_key(key_path, "count"), f"must be an integer (got {_type_name(count)} {count!r})")
        if not 0 <= count <= MAX_POOL_COUNT:
            raise self.fail(_key(key_path, "count"), f"must be between 0 and {MAX_POOL_COUNT} (got {count})")
        capacity = self.resources(raw["capacity"], _key(key_path, "capacity"))
        for required in ("cpu", "memory"):
            if required not in capacity:
                raise self.fail(_key(key_path, "capacity"), f"missing required resource {required!r}")
        capacity.setdefault("pods", DEFAULT_MAX_PODS)
        allocatable = None
        if raw.get("allocatable") is not None:
            allocatable = self.resources(raw["allocatable"], _key(key_path, "allocatable"))
            for res, amount in allocatable.items():
                sub = _key(_key(key_path, "allocatable"), res)
                if res not in capacity:
                    raise self.fail(sub, "not in capacity")
                if parse_quantity(amount) > parse_quantity(capacity[res]):
                    raise self.fail(sub, f"exceeds capacity ({amount} > {capacity[res]})")
            allocatable = {**capacity, **allocatable}
        topology_raw = raw.get("topology")
        topology: dict[str, str] = {}
        if topology_raw is not None:
            self.mapping(topology_raw, _key(key_path, "topology"), tuple(TOPOLOGY_LABELS))
            for key, item in topology_raw.items():
                topology[key] = self.label_value(item, _key(_key(key_path, "topology"), key), template=True)
        return NodePool(
            name=name,
            count=count,
            capacity=capacity,
            allocatable=allocatable,
            labels=self.labels(raw.get("labels"), _key(key_path, "labels"), template=True),
            taints=self.taints(raw.get("taints"), _key(key_path, "taints")),
            topology=topology,
        )

    def spec(self, document: object) -> ClusterSpec:
        raw = self.mapping(document, "", ("apiVersion", "kind", "host", "nodePools"))
        if raw.get("apiVersion") != API_VERSION:
            raise self.fail("apiVersion", f"must be {API_VERSION!r} (got {raw.get('apiVersion')!r})")
        if raw.get("kind") != KIND:
            raise self.fail("kind", f"must be {KIND!r} (got {raw.get('kind')!r})")
        host = self.host(raw.get("host"))
        pools_raw = raw.get("nodePools") or []
        if not isinstance(pools_raw, list):
            raise self.fail("nodePools", f"must be a list (got {_type_name(pools_raw)})")
        pools: list[NodePool] = []
        names: set[str] = set()
        for i, item in enumerate(pools_raw):
            pool = self.pool(item, _key("nodePools", i))
            if pool.name in names:
                raise self.fail(_key(_key("nodePools", i), "name"), f"duplicate pool name {pool.name!r}")
            names.add(pool.name)
            pools.append(pool)
        spec = ClusterSpec(path=self.path, host=host, node_pools=tuple(pools))
        limit = EMULATED_NODE_NETWORK.num_addresses - 2
        if spec.emulated_node_count > limit:
            raise self.fail("nodePools", f"{spec.emulated_node_count} emulated nodes exceed the limit of {limit}")
        return spec


def _type_name(value: object) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def parse_cluster_spec(text: str, path: Path) -> ClusterSpec:
    """Parse and validate spec text; ``path`` only names the source in errors."""
    try:
        document = yaml.load(
            text, Loader=StrictLoader
        )  # the project's one strict loader: safe types, no duplicate keys
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        raise ClusterSpecError(path, "", f"invalid YAML: {problem}{where}") from None
    except yaml.YAMLError as exc:
        raise ClusterSpecError(path, "", f"invalid YAML: {' '.join(str(exc).split())}") from None
    spec = _Validator(path).spec(document)
    logger.info(
        "cluster spec %s: %d pool(s), %d emulated node(s), host %s",
        path,
        len(spec.node_pools),
        spec.emulated_node_count,
        "included" if spec.host.include else "excluded",
    )
    return spec


def load_cluster_spec(path: Path) -> ClusterSpec:
    """Read and validate a cluster spec file; every problem is a one-line :class:`ClusterSpecError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClusterSpecError(path, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ClusterSpecError(path, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_cluster_spec(text, path)


# --------------------------------------------------------------------------------------------------------------------
# Nodes


def _emulated_ip(ordinal: int) -> str:
    return str(EMULATED_NODE_NETWORK.network_address + ordinal + 1)


def emulated_nodes(spec: ClusterSpec, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Complete Node dicts for every pool node, in pool order then index order.

    Each carries ``aibench.io/emulated=true`` (label and annotation) so results can say a pod only *pretended* to
    run on, say, an H100 node, and a distinct InternalIP in 127.1.0.0/16.
    """
    arch = kube_arch()
    nodes: list[dict[str, Any]] = []
    ordinal = 0
    for pool in spec.node_pools:
        for index in range(pool.count):
            name = pool.node_name(index)
            labels = base_labels(name, arch)
            labels["node.kubernetes.io/instance-type"] = "emulated"
            gpus = pool.capacity.get(GPU_RESOURCE)
            if gpus is not None and parse_quantity(gpus) > 0:
                labels["nvidia.com/gpu.present"] = "true"
                labels["nvidia.com/gpu.count"] = gpus
            labels.update(pool.labels_for(index))
            labels[EMULATED_LABEL] = "true"
            labels[NODE_POOL_LABEL] = pool.name
            info = node_info(
                arch=labels.get("kubernetes.io/arch", arch),
                system_uuid=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.emulated.aibench.io")),
                os_image="aibench emulated node",
            )
            nodes.append(
                build_node(
                    name=name,
                    labels=labels,
                    annotations={EMULATED_ANNOTATION: "true"},
                    capacity=pool.capacity,
                    allocatable=pool.allocatable,
                    node_info=info,
                    internal_ip=_emulated_ip(ordinal),
                    taints=[t.as_dict() for t in pool.taints],
                    now=now,
                )
            )
            ordinal += 1
    return nodes


def apply_host_overrides(node: dict[str, Any], spec: ClusterSpec) -> dict[str, Any]:
    """A copy of the host node with the spec's extra labels and taints; the input is left untouched.

    Spec labels win over discovered ones (an operator may pin ``topology.kubernetes.io/zone``); the well-known
    ``kubernetes.io/hostname`` is the one label that cannot be overridden, as the kubelet would also refuse it.
    """
    out = copy.deepcopy(node)
    labels = out.setdefault("metadata", {}).setdefault("labels", {})
    hostname = labels.get("kubernetes.io/hostname")
    labels.update(spec.host.labels)
    if hostname is not None:
        labels["kubernetes.io/hostname"] = hostname
    if spec.host.taints:
        taints = out.setdefault("spec", {}).setdefault("taints", [])
        existing = {(t.get("key"), t.get("effect")) for t in taints}
        taints.extend(t.as_dict() for t in spec.host.taints if (t.key, t.effect) not in existing)
    return out


def all_nodes(
    host: dict[str, Any] | None, spec: ClusterSpec | None, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The nodes the embedded target registers: the host (with overrides, unless excluded) then emulated ones."""
    if spec is None:
        return [host] if host is not None else []
    nodes = [apply_host_overrides(host, spec)] if host is not None and spec.host.include else []
    emulated = emulated_nodes(spec, now=now)
    taken = {n["metadata"]["name"] for n in nodes}
    clash = next((n["metadata"]["name"] for n in emulated if n["metadata"]["name"] in taken), None)
    if clash is not None:
        raise ClusterSpecError(spec.path or Path("<memory>"), "nodePools", f"node name {clash!r} clashes with the host")
    return nodes + emulated
