"""NetworkPolicy (networking.k8s.io/v1) compiled into one nftables table per pod namespace. Pure: no I/O.

Semantics are kube's: a pod is isolated for a direction when any policy of its namespace selects it and lists that
direction in ``policyTypes`` (default: Ingress, plus Egress when ``egress`` is given); an isolated pod accepts only
what some rule of some selecting policy allows (the union). Peers: ``podSelector`` (the policy's namespace),
``namespaceSelector`` (every pod there), both (pods matching in matching namespaces), ``ipBlock`` with ``except``;
an absent or empty peer list means every source/destination. Ports: protocol (TCP default, UDP, SCTP), number,
named port (resolved on the destination pod: the selected pod for ingress, each peer pod for egress) and
``endPort`` ranges; no ports means every port.

Always accepted, as CNIs do: replies of established connections (conntrack), the pod's own loopback, and for
ingress the node itself (the bridge gateway address: kubelet probes and the harness on the host reach pods from
it). An egress-isolated pod is not exempt towards the host: the gateway must be allowed like any address.

What cannot be expressed is returned as problems per policy (never silently allowed): an IPv6 ipBlock (the pod
network is IPv4-only, so the rule admits nothing), a selector kube would reject (it then selects nothing), an
unknown protocol or policy type, ``endPort`` on a named port. The agent turns them into Warning events.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.embedded.selectors import LabelSelector, SelectorError, label_selector_from_object
from harness.podnet.ranges import BENCH_RANGE

TABLE = "aibpol"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}

PolicyKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class PodView:
    """What the compiler needs of a pod."""

    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    ip: str | None
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, containerPort) of named container ports


def pod_view(pod: Mapping[str, Any]) -> PodView:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ip = status.get("podIP")
    usable = (
        ip
        and not spec.get("hostNetwork")
        and status.get("phase") not in ("Succeeded", "Failed")
        and ipaddress.IPv4Address(ip) in BENCH_RANGE
    )
    ports = tuple(
        (str(p["name"]), str(p.get("protocol", "TCP")), int(p["containerPort"]))
        for c in spec.get("containers") or []
        for p in c.get("ports") or []
        if p.get("name") and p.get("containerPort")
    )
    return PodView(
        namespace=meta.get("namespace", "default"),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        labels=dict(meta.get("labels") or {}),
        ip=ip if usable else None,
        ports=ports,
    )


@dataclass(frozen=True, slots=True)
class _PortSpec:
    protocol: str  # nft name: tcp/udp/sctp
    port: int | str | None  # None: every port of the protocol; str: a named port
    end: int | None = None


@dataclass(slots=True)
class _Peers:
    """The peers of one rule: any address, or pods (by IP) and ipBlocks."""

    any: bool = False
    pods: list[PodView] = field(default_factory=list)
    blocks: list[tuple[ipaddress.IPv4Network, tuple[ipaddress.IPv4Network, ...]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class PodRules:
    """The accept rules of one pod; ``None`` for a direction the pod is not isolated in."""

    ingress: tuple[str, ...] | None
    egress: tuple[str, ...] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Compiled:
    rules: dict[str, PodRules]  # pod uid -> rules
    problems: dict[PolicyKey, tuple[str, ...]]  # policy -> what is not enforced


class _Context:
    def __init__(self, pods: Sequence[PodView], namespaces: Iterable[Mapping[str, Any]]) -> None:
        self.pods = [p for p in pods if p.ip]
        self.namespace_labels: dict[str, dict[str, str]] = {}
        for ns in namespaces:
            meta = ns.get("metadata") or {}
            name = meta.get("name", "")
            self.namespace_labels[name] = {**(meta.get("labels") or {}), NAMESPACE_NAME_LABEL: name}
        for pod in pods:  # a pod's namespace always exists for selection, even if not listed
            self.namespace_labels.setdefault(pod.namespace, {NAMESPACE_NAME_LABEL: pod.namespace})


def _selector(raw: Any, what: str, problems: list[str]) -> LabelSelector:
    try:
        return label_selector_from_object(raw if isinstance(raw, Mapping) else {})
    except SelectorError as exc:
        problems.append(f"{what}: {exc}: it selects nothing")
        return LabelSelector.nothing()


def _peers(raw_peers: Any, policy_ns: str, ctx: _Context, what: str, problems: list[str]) -> _Peers:
    peers = _Peers()
    if not raw_peers:
        peers.any = True
        return peers
    for i, peer in enumerate(raw_peers):
        where = f"{what}[{i}]"
        block = peer.get("ipBlock")
        if block is not None:
            if "podSelector" in peer or "namespaceSelector" in peer:
                problems.append(f"{where}: ipBlock cannot be combined with selectors: peer ignored")
                continue
            try:
                cidr = ipaddress.ip_network(str(block.get("cidr", "")), strict=False)
                excepts = [ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or []]
            except ValueError as exc:
                problems.append(f"{where}: ipBlock {exc}: peer ignored")
                continue
            if not isinstance(cidr, ipaddress.IPv4Network):
                problems.append(f"{where}: ipBlock {cidr} is IPv6 and the pod network is IPv4-only: not enforced")
                continue
            peers.blocks.append((cidr, tuple(e for e in excepts if isinstance(e, ipaddress.IPv4Network))))
            continue
        pod_sel = (
            _selector(peer.get("podSelector"), f"{where}.podSelector", problems) if "podSelector" in peer else None
        )
        if "namespaceSelector" in peer:
            ns_sel = _selector(peer.get("namespaceSelector"), f"{where}.namespaceSelector", problems)
            namespaces = {n for n, labels in ctx.namespace_labels.items() if ns_sel.matches(labels)}
        else:
            namespaces = {policy_ns}
        sel = pod_sel or LabelSelector.everything()
        peers.pods.extend(p for p in ctx.pods if p.namespace in namespaces and sel.matches(p.labels))
    return peers


def _ports(raw_ports: Any, what: str, problems: list[str]) -> list[_PortSpec] | None:
    """None: every port; else the specs (possibly empty when all were invalid, which admits nothing)."""
    if not raw_ports:
        return None
    specs = []
    for i, raw in enumerate(raw_ports):
        protocol = _PROTOCOLS.get(str(raw.get("protocol", "TCP")))
        if protocol is None:
            problems.append(f"{what}[{i}]: protocol {raw.get('protocol')!r} is not supported: not enforced")
            continue
        port, end = raw.get("port"), raw.get("endPort")
        if isinstance(port, str) and not port.isdigit():
            if end is not None:
                problems.append(f"{what}[{i}]: endPort with the named port {port!r} is invalid: not enforced")
                continue
            specs.append(_PortSpec(protocol, port))
        elif port is None:
            specs.append(_PortSpec(protocol, None))
        else:
            number = int(port)
            specs.append(_PortSpec(protocol, number, int(end) if end is not None and int(end) > number else None))
    return specs


def _named(pod: PodView, name: str, protocol: str) -> int | None:
    return next((n for pname, proto, n in pod.ports if pname == name and _PROTOCOLS.get(proto) == protocol), None)


def _port_matches(specs: Sequence[_PortSpec], named_on: PodView | None) -> list[str]:
    """Match expressions for the ports (named ports resolved on ``named_on``; unresolvable ones match nothing)."""
    by_proto: dict[str, set[str] | None] = {}
    for spec in specs:
        if spec.port is None:
            by_proto[spec.protocol] = None
            continue
        if isinstance(spec.port, str):
            number = _named(named_on, spec.port, spec.protocol) if named_on is not None else None
            if number is None:
                continue
            text = str(number)
        else:
            text = f"{spec.port}-{spec.end}" if spec.end is not None else str(spec.port)
        if spec.protocol in by_proto and by_proto[spec.protocol] is None:
            continue
        entry = by_proto.setdefault(spec.protocol, set())
        assert entry is not None
        entry.add(text)
    out = []
    for proto, ports in sorted(by_proto.items()):
        if ports is None:
            out.append(f"meta l4proto {proto}")
        else:
            ordered = sorted(ports, key=lambda t: int(t.split("-")[0]))
            out.append(
                f"{proto} dport {ordered[0]}" if len(ordered) == 1 else f"{proto} dport {{ {', '.join(ordered)} }}"
            )
    return out


def _addr_set(field_: str, ips: Iterable[str]) -> str:
    ordered = sorted(set(ips), key=ipaddress.IPv4Address)
    return f"ip {field_} {ordered[0]}" if len(ordered) == 1 else f"ip {field_} {{ {', '.join(ordered)} }}"


def _block_match(field_: str, cidr: ipaddress.IPv4Network, excepts: Sequence[ipaddress.IPv4Network]) -> str:
    text = f"ip {field_} {cidr}"
    if excepts:
        text += f" ip {field_} != {{ {', '.join(str(e) for e in sorted(excepts))} }}"
    return text


def _in_block(ip: str, cidr: ipaddress.IPv4Network, excepts: Sequence[ipaddress.IPv4Network]) -> bool:
    address = ipaddress.IPv4Address(ip)
    return address in cidr and not any(address in e for e in excepts)


def _rule_lines(
    peers: _Peers, specs: list[_PortSpec] | None, *, ingress: bool, me: PodView, ctx: _Context
) -> list[str]:
    field_ = "saddr" if ingress else "daddr"
    lines: list[str] = []

    def emit(peer_match: str, port_matches: list[str] | None) -> None:
        if port_matches is None:
            lines.append(f"{peer_match} accept".strip())
        else:
            lines.extend(f"{peer_match} {pm} accept".strip() for pm in port_matches)

    if ingress or specs is None or not any(isinstance(s.port, str) for s in specs):
        ports = None if specs is None else _port_matches(specs, me if ingress else None)
        if ports == []:
            return []  # every port was a named one the pod does not define: admits nothing
        if peers.any:
            emit("", ports)
        if peers.pods:
            emit(_addr_set(field_, (p.ip for p in peers.pods if p.ip)), ports)
        for cidr, excepts in peers.blocks:
            emit(_block_match(field_, cidr, excepts), ports)
        return lines
    # egress with named ports: numeric ones as above, named ones resolved on each destination pod
    numeric = [s for s in specs if not isinstance(s.port, str)]
    named = [s for s in specs if isinstance(s.port, str)]
    if numeric:
        lines.extend(_rule_lines(peers, numeric, ingress=False, me=me, ctx=ctx))
    targets = list(peers.pods)
    if peers.any:
        targets = list(ctx.pods)
    for cidr, excepts in peers.blocks:
        targets.extend(p for p in ctx.pods if p.ip and _in_block(p.ip, cidr, excepts))
    seen: set[str] = set()
    for pod in targets:
        if pod.ip is None or pod.uid in seen:
            continue
        seen.add(pod.uid)
        for pm in _port_matches(named, pod):
            lines.append(f"ip daddr {pod.ip} {pm} accept")
    return lines


def compile_policies(
    policies: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    namespaces: Iterable[Mapping[str, Any]],
    *,
    local_uids: Iterable[str],
) -> Compiled:
    """Rules for each pod in ``local_uids`` (the pods whose namespaces this agent programs) and the problems."""
    views = [pod_view(p) for p in pods]
    ctx = _Context(views, namespaces)
    local = set(local_uids)
    ingress: dict[str, list[str] | None] = {v.uid: None for v in views if v.uid in local}
    egress: dict[str, list[str] | None] = dict(ingress)
    problems: dict[PolicyKey, tuple[str, ...]] = {}
    for policy in policies:
        meta, spec = policy.get("metadata") or {}, policy.get("spec") or {}
        ns, name = meta.get("namespace", "default"), meta.get("name", "")
        found: list[str] = []
        selector = _selector(spec.get("podSelector"), "spec.podSelector", found)
        types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))
        for t in types:
            if t not in ("Ingress", "Egress"):
                found.append(f"policyTypes: {t!r} is not a policy type: ignored")
        selected = [v for v in views if v.uid in local and v.namespace == ns and selector.matches(v.labels)]
        for direction, key, table in (("Ingress", "ingress", ingress), ("Egress", "egress", egress)):
            if direction not in types:
                continue
            peer_key = "from" if key == "ingress" else "to"
            compiled_rules = []
            for i, rule in enumerate(spec.get(key) or []):
                where = f"spec.{key}[{i}]"
                peers = _peers(rule.get(peer_key), ns, ctx, f"{where}.{peer_key}", found)
                specs = _ports(rule.get("ports"), f"{where}.ports", found)
                compiled_rules.append((peers, specs))
            for pod in selected:
                lines = table[pod.uid]
                if lines is None:
                    lines = table[pod.uid] = []
                for peers, specs in compiled_rules:
                    lines.extend(_rule_lines(peers, specs, ingress=key == "ingress", me=pod, ctx=ctx))
        if found:
            problems[(ns, name)] = tuple(dict.fromkeys(found))
    rules = {
        uid: PodRules(
            ingress=None if ingress[uid] is None else tuple(dict.fromkeys(sorted(ingress[uid] or []))),
            egress=None if egress[uid] is None else tuple(dict.fromkeys(sorted(egress[uid] or []))),
        )
        for uid in ingress
    }
    return Compiled(rules=rules, problems=problems)


OPEN = PodRules(ingress=None, egress=None)


def render_table(rules: PodRules, *, host_address: str, replace: bool = True) -> str:
    """The pod's whole policy table, replaced atomically (or only created, for a new namespace)."""

    def chain(name: str, hook: str, accepts: tuple[str, ...] | None, always: list[str]) -> str:
        head = f"  chain {name} {{\n    type filter hook {hook} priority 0; policy accept;\n"
        if accepts is None:
            return head + "  }\n"
        body = ["ct state established,related accept", *always, *accepts, "drop"]
        return head + "".join(f"    {line}\n" for line in body) + "  }\n"

    return (
        (f"table inet {TABLE}\ndelete table inet {TABLE}\n" if replace else "")
        + f"table inet {TABLE} {{\n"
        + chain("ingress", "input", rules.ingress, ['iifname "lo" accept', f"ip saddr {host_address} accept"])
        + chain("egress", "output", rules.egress, ['oifname "lo" accept'])
        + "}\n"
    )
