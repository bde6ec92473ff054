"""ClusterIP routing with nftables DNAT: the rules (pure rendering) and the proxy that applies them everywhere.

Design: each pod namespace gets its own ``nat/output`` chain that DNATs ``clusterIP:port`` to a ready endpoint
chosen by ``numgen inc mod N`` (round robin per client namespace, as the userspace proxy did; ``numgen random``
made a 2-replica Service answer 6 requests from one replica about 1 time in 32), and the root namespace gets the
same chain (output hook only, matching only this cluster's Service CIDR) so the harness on the host reaches
ClusterIPs too. DNAT happens in the client's own namespace, so the backend sees the client pod's real source
address (NetworkPolicy needs it) and no br_netfilter or ip_forward is involved: the translated packet simply
leaves the client's veth for the backend's address on the same bridge. A ClusterIP port without endpoints is
rejected (TCP reset), as kube-proxy's REJECT rule does.

Endpoints on the host's loopback (hostNetwork pods, servers of the control plane itself) cannot be reached from a
pod namespace as 127.0.0.1 (that is the pod's own loopback): pods DNAT them to the bridge gateway instead, and the
root namespace maps ``gateway:port`` arriving from the bridge to the loopback endpoint (``route_localnet`` on the
bridge only; packets a pod addresses to 127.0.0.0/8 itself are dropped before that).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from harness.embedded.network import Backend  # the userspace proxy's endpoint shape, shared
from harness.podnet.ranges import BENCH_RANGE

PROTOCOLS = ("tcp", "udp", "sctp")


ServiceKey = tuple[str, int, str]  # (clusterIP, port, protocol)


def check_backend(ip: str) -> ipaddress.IPv4Address:
    """Only pod-network or host-loopback endpoints: never an address that could route off the machine."""
    address = ipaddress.IPv4Address(ip)
    if address not in BENCH_RANGE and not address.is_loopback:
        raise ValueError(f"refusing to forward to {ip}: endpoints must be in {BENCH_RANGE} or on the host loopback")
    return address


def _target(backend: Backend, gateway: str | None) -> str:
    """Where a namespace sends ``backend``: loopback endpoints go through the gateway when seen from a pod."""
    ip = backend.ip
    if gateway is not None and ipaddress.IPv4Address(ip).is_loopback:
        ip = gateway
    return f"{ip} . {backend.port}"


def dnat_rules(services: Mapping[ServiceKey, Sequence[Backend]], *, gateway: str | None) -> list[str]:
    """One rule per ClusterIP port with endpoints; ``gateway`` set when rendering for a pod namespace."""
    rules = []
    for (address, port, protocol), backends in sorted(services.items()):
        if not backends:
            continue
        targets = sorted({_target(b, gateway) for b in backends})
        match = f"ip daddr {address} {protocol} dport {port}"
        if len(targets) == 1:
            ip, _, target_port = targets[0].partition(" . ")
            rules.append(f"{match} dnat ip to {ip}:{target_port}")
        else:
            mapping = ", ".join(f"{i} : {t}" for i, t in enumerate(targets))
            rules.append(f"{match} dnat ip to numgen inc mod {len(targets)} map {{ {mapping} }}")
    return rules


def render_service_table(
    table: str,
    services: Mapping[ServiceKey, Sequence[Backend]],
    *,
    service_cidr: str,
    gateway: str | None,
    replace: bool = True,
) -> str:
    """The whole Service table of one namespace, replaced atomically (``table; delete table; table {...}``), or
    only created (``replace=False``, a new namespace: deleting costs the kernel an RCU grace period, ~10 ms)."""
    body = "\n".join(f"    {r}" for r in dnat_rules(services, gateway=gateway))
    return (
        (f"table ip {table}\ndelete table ip {table}\n" if replace else "") + f"table ip {table} {{\n"
        f"  chain svc_nat {{\n    type nat hook output priority -100; policy accept;\n{body}\n  }}\n"
        f"  chain svc_reject {{\n    type filter hook output priority -1; policy accept;\n"
        f"    ip daddr {service_cidr} meta l4proto tcp reject with tcp reset\n"
        f"    ip daddr {service_cidr} reject\n  }}\n"
        "}\n"
    )


def localnet_rules(services: Mapping[ServiceKey, Sequence[Backend]], *, bridge: str, gateway: str) -> list[str]:
    """Root-namespace prerouting: ``gateway:port`` from the bridge -> the loopback endpoint (first one per port)."""
    seen: dict[tuple[str, int], str] = {}
    for (_, _, protocol), backends in sorted(services.items()):
        for backend in backends:
            if ipaddress.IPv4Address(backend.ip).is_loopback:
                seen.setdefault((protocol, backend.port), backend.ip)
    return [
        f'iifname "{bridge}" ip daddr {gateway} {protocol} dport {port} dnat ip to {ip}:{port}'
        for (protocol, port), ip in sorted(seen.items())
    ]
