"""The root-namespace side of one cluster's pod network: blackhole route, bridge, guard table, state dir, sweep.

Safety first: before any namespace or link exists, the root namespace must have ``blackhole 198.18.0.0/15`` (it is
installed when missing and never removed), so an address of the range that no bridge claims is dropped instead of
following the default route off the machine. The cluster's own nftables table then drops anything forwarded
between one of its bridges and any other interface (there is no masquerade and ip_forward is left alone: pods only
talk to each other over the bridge and to the host through the gateway address).

Every cluster records its owner (pid and process start time, so a recycled pid is not mistaken for the owner) and
its subnets under ``/run/aibench-podnet/<id>/``. At start, clusters whose owner is gone are swept: their
namespaces, links, tables and state directory are removed; live clusters' subnets are avoided.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.podnet import commands, ranges

log = logging.getLogger(__name__)

STATE_ROOT = Path("/run/aibench-podnet")
BLACKHOLE = f"blackhole {ranges.BENCH_RANGE}"


def ensure_blackhole() -> None:
    """Install ``blackhole 198.18.0.0/15`` in the root namespace unless it is there (never removed)."""
    routes = commands.run(["ip", "-4", "route", "show", "type", "blackhole", str(ranges.BENCH_RANGE)])
    if str(ranges.BENCH_RANGE) not in routes:
        commands.run(["ip", "-4", "route", "add", "blackhole", str(ranges.BENCH_RANGE)])
        log.info("installed %s in the root namespace", BLACKHOLE)


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime


def _owner_alive(state: Path) -> bool:
    try:
        owner = json.loads((state / "owner.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(_start_time(int(owner["pid"])) == owner.get("start"))


@contextlib.contextmanager
def reservation_lock(state_root: Path = STATE_ROOT) -> Iterator[None]:
    """Serialise sweep + pick + record across processes: two clusters starting at once on this machine (a test
    session runs several) would otherwise pick the same subnet and the second's routes would collide."""
    state_root.mkdir(parents=True, exist_ok=True)
    with open(state_root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def reserve(state_root: Path, cluster_id: str, subnets: Sequence[ipaddress.IPv4Network]) -> None:
    """Record this process as the owner of ``subnets`` (under :func:`reservation_lock`), before anything exists."""
    state = state_root / cluster_id
    state.mkdir(parents=True, exist_ok=True)
    owner = {"pid": os.getpid(), "start": _start_time(os.getpid()), "subnets": [str(s) for s in subnets]}
    (state / "owner.json").write_text(json.dumps(owner))


def routed_subnets() -> list[ipaddress.IPv4Network]:
    """Routes inside 198.18.0.0/15 the kernel already has (but the blackhole): whoever made them, they are taken."""
    try:
        out = commands.run(["ip", "-4", "route", "show", "table", "all"])
    except commands.NetCommandError:
        return []
    taken = []
    for line in out.splitlines():
        words = line.split()
        if not words or words[0] in ("blackhole", "local", "broadcast"):
            continue
        with contextlib.suppress(ValueError):
            network = ipaddress.IPv4Network(words[0], strict=False)
            if network.overlaps(ranges.BENCH_RANGE) and network != ranges.BENCH_RANGE:
                taken.append(network)
    return taken


def sweep(state_root: Path = STATE_ROOT) -> list[ipaddress.IPv4Network]:
    """Remove the leftovers of clusters whose owner died; return the subnets live clusters hold."""
    taken: list[ipaddress.IPv4Network] = []
    if not state_root.is_dir():
        return taken
    for state in sorted(p for p in state_root.iterdir() if p.is_dir()):
        if _owner_alive(state):
            with contextlib.suppress(OSError, ValueError, KeyError):
                info = json.loads((state / "owner.json").read_text())
                taken.extend(ipaddress.IPv4Network(s) for s in info.get("subnets", []))
            continue
        log.info("sweeping pod network %s left by a dead process", state.name)
        remove_cluster(state.name)
        shutil.rmtree(state, ignore_errors=True)
    return taken


def _links() -> list[str]:
    out = commands.run(["ip", "-o", "link", "show"])
    names = []
    for line in out.splitlines():
        parts = line.split(": ", 2)
        if len(parts) >= 2:
            names.append(parts[1].split("@", 1)[0])
    return names


def remove_cluster(cluster_id: str) -> None:
    """Delete every namespace, link and table named after ``cluster_id`` (best effort: each step is logged)."""
    prefix = f"aib-{cluster_id}-"
    lines = (
        [f"netns del {p.name}" for p in commands.NETNS_DIR.glob(f"{prefix}*")] if commands.NETNS_DIR.is_dir() else []
    )
    mine = tuple(f"{kind}{cluster_id}" for kind in ("aiv", "aia", "ain", "aim", "aib"))
    lines += [f"link del {name}" for name in _links() if name.startswith(mine)]
    for line in lines:  # one by one: a link that vanished with its namespace must not stop the rest
        try:
            commands.ip_batch([line])
        except commands.NetCommandError as exc:
            log.debug("sweep %s: %s", line, exc)
    with contextlib.suppress(commands.NetCommandError):
        commands.nft(f"delete table ip {ranges.table_name(cluster_id)}\n")


@dataclass(slots=True, kw_only=True)
class HostNetwork:
    """The bridge, gateway and guard table of one cluster in the root namespace."""

    cluster_id: str
    pod_subnet: ipaddress.IPv4Network
    service_subnet: ipaddress.IPv4Network
    state_root: Path = STATE_ROOT
    extra_bridges: list[str] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return ranges.bridge_name(self.cluster_id)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.pod_subnet.network_address + 1

    @property
    def table(self) -> str:
        return ranges.table_name(self.cluster_id)

    @property
    def state_dir(self) -> Path:
        return self.state_root / self.cluster_id

    def setup(self) -> None:
        """Record the owner, then blackhole route, bridge (gateway address, route to the Service CIDR) and table."""
        for subnet in (self.pod_subnet, self.service_subnet):
            if not ranges.in_bench_range(subnet):
                raise ValueError(f"subnet {subnet} is outside {ranges.BENCH_RANGE}")
        reserve(self.state_root, self.cluster_id, (self.pod_subnet, self.service_subnet))
        ensure_blackhole()
        parent = ranges.macvlan_parent_name(self.cluster_id)
        commands.ip_batch(
            [
                f"link add {self.bridge} type bridge",
                f"addr add {self.gateway}/{self.pod_subnet.prefixlen} dev {self.bridge}",
                f"link set {self.bridge} up",
                # ClusterIPs must route somewhere for the output hook to see (and DNAT) them: the bridge, never
                # the blackhole's default.
                f"route add {self.service_subnet} dev {self.bridge} src {self.gateway}",
                # macvlan attachments hang off a link the agent made (a veth pair: this kernel has no dummy links)
                f"link add {parent} type veth peer name {parent}p",
                f"link set {parent}p up",
                f"link set {parent} up",
            ]
        )
        Path(f"/proc/sys/net/ipv4/conf/{self.bridge}/route_localnet").write_text("1")
        self.apply_table([], [])

    def render_table(self, service_rules: Sequence[str], localnet_rules: Sequence[str]) -> str:
        guards = []
        for bridge in [self.bridge, *self.extra_bridges]:
            guards.append(f'    iifname "{bridge}" oifname != "{bridge}" drop')
            guards.append(f'    oifname "{bridge}" iifname != "{bridge}" drop')
        svc = "\n".join(f"    {r}" for r in service_rules)
        local = "\n".join(f"    {r}" for r in localnet_rules)
        cidr = self.service_subnet
        return (
            f"table ip {self.table}\ndelete table ip {self.table}\n"
            f"table ip {self.table} {{\n"
            "  chain guard {\n    type filter hook forward priority -10; policy accept;\n"
            + "\n".join(guards)
            + "\n  }\n"
            "  chain no_loopback_from_pods {\n    type filter hook prerouting priority -150; policy accept;\n"
            f'    iifname "{self.bridge}" ip daddr 127.0.0.0/8 drop\n  }}\n'
            f"  chain localnet {{\n    type nat hook prerouting priority -100; policy accept;\n{local}\n  }}\n"
            f"  chain svc_nat {{\n    type nat hook output priority -100; policy accept;\n{svc}\n  }}\n"
            "  chain svc_reject {\n    type filter hook output priority -1; policy accept;\n"
            f"    ip daddr {cidr} meta l4proto tcp reject with tcp reset\n    ip daddr {cidr} reject\n  }}\n"
            "}\n"
        )

    def apply_table(self, service_rules: Sequence[str], localnet_rules: Sequence[str]) -> None:
        commands.nft(self.render_table(service_rules, localnet_rules))

    def add_bridge(self, name: str) -> None:
        """An attachment bridge (no address: it only carries pod-to-pod frames), guarded like the pod bridge."""
        commands.ip_batch([f"link add {name} type bridge", f"link set {name} up"])
        self.extra_bridges.append(name)

    def teardown(self) -> None:
        """Remove everything of this cluster, found by name (the blackhole route stays)."""
        remove_cluster(self.cluster_id)
        shutil.rmtree(self.state_dir, ignore_errors=True)
