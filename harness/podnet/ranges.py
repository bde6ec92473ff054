"""Where pod, Service and secondary-network addresses come from, and how this cluster's links are named.

Everything lives in 198.18.0.0/15 (RFC 2544's benchmarking range), which the root namespace blackholes, so a packet
that escaped every bridge would be dropped rather than routed off the machine. The range is shared with the real
control plane lane (pods 198.18.64.0/18, Services 198.19.128.0/17), so the embedded target takes its ranges from
the parts that lane never uses:

- 198.18.0.0/18    secondary networks (NetworkAttachmentDefinitions)
- 198.18.128.0/17  pod networks: each cluster takes a /20 (4,094 pods)
- 198.19.0.0/17    Service ClusterIPs: each cluster takes a /20

Names carry a short per-cluster id (6 hex digits) so two clusters on one machine never collide: bridge
``aib<id>``, host-side veths ``aiv<id><n>``, attachment bridges ``ain<id><n>``, netns ``aib-<id>-<n>``, nftables
tables ``aib<id>``. Interface names stay within the kernel's 15 characters.
"""

from __future__ import annotations

import ipaddress
import random
import secrets
from collections.abc import Iterable

BENCH_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
SECONDARY_RANGE = ipaddress.IPv4Network("198.18.0.0/18")
POD_RANGE = ipaddress.IPv4Network("198.18.128.0/17")
SERVICE_RANGE = ipaddress.IPv4Network("198.19.0.0/17")
#: the real control plane's ranges (kwok pods, this machine's node, Services): never handed out here
REAL_CONTROL_PLANE_RANGES = (ipaddress.IPv4Network("198.18.64.0/18"), ipaddress.IPv4Network("198.19.128.0/17"))
CLUSTER_PREFIX = 20
ID_HEX = 6
MAX_IFNAME = 15


def new_cluster_id() -> str:
    return secrets.token_hex(ID_HEX // 2)


def bridge_name(cluster_id: str) -> str:
    return f"aib{cluster_id}"


def veth_name(cluster_id: str, index: int) -> str:
    """Host side of pod ``index``'s veth (index < 16**5 within one cluster)."""
    return f"aiv{cluster_id}{index:05x}"[:MAX_IFNAME]


def attachment_bridge_name(cluster_id: str, index: int) -> str:
    return f"ain{cluster_id}{index:02x}"


def attachment_veth_name(cluster_id: str, index: int) -> str:
    return f"aia{cluster_id}{index:05x}"[:MAX_IFNAME]


def macvlan_parent_name(cluster_id: str) -> str:
    """The link macvlan attachments hang off: created by the agent (never a host NIC)."""
    return f"aim{cluster_id}"


def netns_name(cluster_id: str, index: int) -> str:
    return f"aib-{cluster_id}-{index}"


def table_name(cluster_id: str) -> str:
    return f"aib{cluster_id}"


def in_bench_range(network: ipaddress.IPv4Network | ipaddress.IPv4Address) -> bool:
    if isinstance(network, ipaddress.IPv4Address):
        return network in BENCH_RANGE
    return network.subnet_of(BENCH_RANGE)


def on_this_machine(address: str) -> bool:
    """True for the addresses the project may send to: loopback, or the pod network's 198.18.0.0/15 (its bridges
    and the blackhole route keep it on this machine)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_loopback or (isinstance(ip, ipaddress.IPv4Address) and ip in BENCH_RANGE)


def pick_subnet(
    within: ipaddress.IPv4Network,
    taken: Iterable[ipaddress.IPv4Network] = (),
    rng: random.Random | None = None,
    prefix: int = CLUSTER_PREFIX,
) -> ipaddress.IPv4Network:
    """A random /``prefix`` of ``within`` that overlaps none of ``taken`` (the subnets of live clusters)."""
    busy = list(taken)
    free = [s for s in within.subnets(new_prefix=prefix) if not any(s.overlaps(t) for t in busy)]
    if not free:
        raise RuntimeError(f"every /{prefix} of {within} is in use by another cluster on this machine")
    return (rng or random.SystemRandom()).choice(free)
