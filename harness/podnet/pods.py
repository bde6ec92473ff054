"""One pod's network namespace: the veth into the cluster bridge, its address, its default route.

Two ``ip -batch`` runs (root side, then inside the namespace) and no read-back: the pod-side MAC is derived from
the address (``0a:58`` + the IPv4 bytes, as CNI's bridge plugin does), so Multus' network-status can name it
without asking the kernel. Deleting the namespace removes the veth pair with it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from harness.podnet import commands, ranges

POD_INTERFACE = "eth0"


def mac_for(address: ipaddress.IPv4Address) -> str:
    """CNI's convention: a locally administered MAC carrying the IPv4 address (0a:58:c6:12:80:05)."""
    return "0a:58:" + ":".join(f"{b:02x}" for b in address.packed)


@dataclass(frozen=True, slots=True, kw_only=True)
class PodNetns:
    """What was created for one pod."""

    index: int
    netns: str
    host_veth: str
    address: ipaddress.IPv4Address
    mac: str

    @property
    def path(self) -> Path:
        return commands.NETNS_DIR / self.netns


def create(
    *,
    cluster_id: str,
    index: int,
    address: ipaddress.IPv4Address,
    subnet: ipaddress.IPv4Network,
    gateway: ipaddress.IPv4Address,
    bridge: str,
) -> PodNetns:
    """Namespace + veth + address + default route via the gateway; undone completely if any step fails."""
    if address not in subnet or not ranges.in_bench_range(subnet):
        raise ValueError(f"pod address {address} is not in the pod subnet {subnet}")
    pod = PodNetns(
        index=index,
        netns=ranges.netns_name(cluster_id, index),
        host_veth=ranges.veth_name(cluster_id, index),
        address=address,
        mac=mac_for(address),
    )
    try:
        commands.ip_batch(
            [
                f"netns add {pod.netns}",
                f"link add {pod.host_veth} type veth peer name {POD_INTERFACE} address {pod.mac} netns {pod.netns}",
                f"link set {pod.host_veth} master {bridge} up",
            ]
        )
        commands.ip_batch(
            [
                "link set lo up",
                f"addr add {address}/{subnet.prefixlen} dev {POD_INTERFACE}",
                f"link set {POD_INTERFACE} up",
                f"route add default via {gateway} dev {POD_INTERFACE}",
            ],
            netns=pod.netns,
        )
    except commands.NetCommandError:
        delete(pod)
        raise
    return pod


def delete(pod: PodNetns) -> None:
    """Remove the namespace (and with it the veth pair); a host-side veth left behind is deleted too."""
    try:
        commands.ip_batch([f"netns del {pod.netns}"])
    except commands.NetCommandError:
        pass
    if Path(f"/sys/class/net/{pod.host_veth}").exists():  # a process still holds the namespace
        try:
            commands.ip_batch([f"link del {pod.host_veth}"])
        except commands.NetCommandError:
            pass
