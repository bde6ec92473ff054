"""Secondary interfaces per NetworkAttachmentDefinition (k8s.cni.cncf.io/v1), read the way Multus reads them.

A pod asks with ``k8s.v1.cni.cncf.io/networks``, either the comma list (``name``, ``ns/name``, ``name@ifname``) or
the JSON list (``[{"name": ..., "namespace": ..., "interface": ..., "ips": [...], "mac": ...}]``). Each attachment
becomes ``net1``, ``net2``... (or the requested name) in the pod, and the pod gets Multus' network-status annotation
(the default network first, with ``"default": true``).

CNI configs understood: ``type: bridge`` (a bridge the agent creates and names itself: ``ain<id><n>``, one per
``bridge`` name of the configs, so NADs naming the same bridge share it as with the bridge plugin) and
``type: macvlan`` (only on a parent link this agent created, ``aim<id>``: never on eth0 or any host link); IPAM
``host-local`` (``subnet`` or ``ranges``) or ``static`` (``addresses``, or the ``ips`` of the request). Every
address must be inside 198.18.0.0/15, else the attachment is refused with a message saying so. No route or gateway
of the config is installed in the pod, and the attachment bridges get no host address: secondary networks carry
pod-to-pod traffic only.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.embedded.names import is_dns1123_label, is_dns1123_subdomain
from harness.podnet import commands, ranges
from harness.podnet.ipam import IpamError, RangePool, require_bench
from harness.podnet.pods import mac_for

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"
DEFAULT_NETWORK = "aibench-podnet"
NAD_GROUP = "k8s.cni.cncf.io"
NAD_PLURAL = "network-attachment-definitions"
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")

NadLookup = Callable[[str, str], Mapping[str, Any] | None]


class AttachmentError(ValueError):
    """A requested attachment that cannot be made; the pod stays Pending with a Warning event saying this."""

    reason = "FailedAttachment"


class NadNotFound(AttachmentError):
    reason = "NetworkNotFound"


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkRequest:
    namespace: str
    name: str
    interface: str | None = None
    ips: tuple[str, ...] = ()
    mac: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_networks(text: str, pod_namespace: str) -> list[NetworkRequest]:
    """Both forms of Multus' annotation; a malformed one raises :class:`AttachmentError` naming what is wrong."""
    text = text.strip()
    if not text:
        return []
    if text.startswith(("[", "{")):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AttachmentError(f"{NETWORKS_ANNOTATION}: not valid JSON: {exc}") from None
        if not isinstance(items, list):
            raise AttachmentError(f"{NETWORKS_ANNOTATION}: the JSON form must be a list of objects")
        requests = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise AttachmentError(f"{NETWORKS_ANNOTATION}: every element needs a string 'name': {item!r}")
            ips = item.get("ips") or []
            if not isinstance(ips, list):
                raise AttachmentError(f"{NETWORKS_ANNOTATION}: 'ips' of {item['name']} must be a list")
            requests.append(
                NetworkRequest(
                    namespace=str(item.get("namespace") or pod_namespace),
                    name=item["name"],
                    interface=item.get("interface"),
                    ips=tuple(str(i) for i in ips),
                    mac=item.get("mac"),
                )
            )
    else:
        requests = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            ref, _, interface = part.partition("@")
            namespace, _, name = ref.rpartition("/")
            requests.append(
                NetworkRequest(namespace=namespace or pod_namespace, name=name, interface=interface or None)
            )
    for request in requests:
        if not is_dns1123_subdomain(request.name) or not is_dns1123_label(request.namespace):
            raise AttachmentError(f"{NETWORKS_ANNOTATION}: {request.key!r} is not a valid network name")
        if request.interface is not None and (not _IFNAME.match(request.interface) or request.interface == "eth0"):
            raise AttachmentError(f"{NETWORKS_ANNOTATION}: interface name {request.interface!r} is not allowed")
    return requests


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachmentConfig:
    """The parts of a NAD's CNI config this agent acts on."""

    network: str  # the CNI config's name
    kind: str  # bridge | macvlan
    bridge: str  # bridge: the config's bridge name (mapped to an agent-owned bridge)
    master: str  # macvlan: the parent link
    mode: str  # macvlan mode
    ipam: str  # host-local | static | "" (no addresses)
    subnet: ipaddress.IPv4Network | None = None
    range_start: ipaddress.IPv4Address | None = None
    range_end: ipaddress.IPv4Address | None = None
    addresses: tuple[ipaddress.IPv4Interface, ...] = ()


def parse_config(nad: Mapping[str, Any]) -> AttachmentConfig:
    """Read a NAD's ``spec.config`` (a CNI config or conflist); refuse what this agent cannot do or may not do."""
    meta = nad.get("metadata") or {}
    where = f"NetworkAttachmentDefinition {meta.get('namespace', '')}/{meta.get('name', '')}"
    raw = (nad.get("spec") or {}).get("config") or ""
    try:
        config = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise AttachmentError(f"{where}: spec.config is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise AttachmentError(f"{where}: spec.config must be a JSON object")
    plugin = config
    if isinstance(config.get("plugins"), list):
        plugin = next(
            (p for p in config["plugins"] if isinstance(p, dict) and p.get("type") in ("bridge", "macvlan")), {}
        )
    kind = plugin.get("type")
    if kind not in ("bridge", "macvlan"):
        raise AttachmentError(
            f"{where}: CNI type {kind or config.get('type')!r} is not supported here (bridge and macvlan are)"
        )
    ipam = plugin.get("ipam") or {}
    ipam_type = str(ipam.get("type", ""))
    subnet = start = end = None
    addresses: list[ipaddress.IPv4Interface] = []
    try:
        if ipam_type == "host-local":
            ranges_ = ipam.get("ranges")
            first = ranges_[0][0] if ranges_ and ranges_[0] else ipam
            if not first.get("subnet"):
                raise AttachmentError(f"{where}: host-local IPAM needs a subnet")
            subnet = require_bench(str(first["subnet"]), f"{where}: subnet")
            if first.get("rangeStart"):
                start = require_bench(str(first["rangeStart"]), f"{where}: rangeStart").network_address
            if first.get("rangeEnd"):
                end = require_bench(str(first["rangeEnd"]), f"{where}: rangeEnd").network_address
        elif ipam_type == "static":
            for entry in ipam.get("addresses") or []:
                require_bench(str(entry.get("address", "")), f"{where}: static address")
                addresses.append(ipaddress.IPv4Interface(str(entry["address"])))
        elif ipam_type:
            raise AttachmentError(f"{where}: IPAM type {ipam_type!r} is not supported (host-local and static are)")
    except IpamError as exc:
        raise AttachmentError(str(exc)) from None
    return AttachmentConfig(
        network=str(config.get("name") or meta.get("name", "")),
        kind=kind,
        bridge=str(plugin.get("bridge") or "cni0"),
        master=str(plugin.get("master") or ""),
        mode=str(plugin.get("mode") or "bridge"),
        ipam=ipam_type,
        subnet=subnet,
        range_start=start,
        range_end=end,
        addresses=tuple(addresses),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Attached:
    """One interface made in a pod: what network-status reports, and what to give back on detach."""

    request: NetworkRequest
    interface: str
    addresses: tuple[ipaddress.IPv4Interface, ...]
    mac: str
    pool_key: str | None

    def status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.request.key, "interface": self.interface}
        if self.addresses:
            entry["ips"] = [str(a.ip) for a in self.addresses]
        entry["mac"] = self.mac
        entry["dns"] = {}
        return entry


def network_status(default_ip: str, default_mac: str, attached: Sequence[Attached]) -> str:
    """Multus' network-status JSON: the cluster network on eth0 first, then every attachment."""
    entries: list[dict[str, Any]] = [
        {
            "name": DEFAULT_NETWORK,
            "interface": "eth0",
            "ips": [default_ip],
            "mac": default_mac,
            "default": True,
            "dns": {},
        }
    ]
    entries.extend(a.status() for a in attached)
    return json.dumps(entries, indent=4)


@dataclass(slots=True)
class Attachments:
    """Bridges, address pools and the interfaces made in pods, for one cluster."""

    cluster_id: str
    add_bridge: Callable[[str], None]  # creates an attachment bridge and guards it (the host side owns that)
    _bridges: dict[str, str] = field(default_factory=dict)  # config bridge name -> agent bridge
    _pools: dict[str, RangePool] = field(default_factory=dict)
    _counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def macvlan_parent(self) -> str:
        return ranges.macvlan_parent_name(self.cluster_id)

    def attach(self, *, netns: str, pod_namespace: str, annotation: str, lookup: NadLookup) -> list[Attached]:
        """Make every requested interface in ``netns``; on any failure undo the addresses and raise."""
        requests = parse_networks(annotation, pod_namespace)
        configs = []
        for request in requests:
            nad = lookup(request.namespace, request.name)
            if nad is None:
                raise NadNotFound(
                    f"cannot find a network-attachment-definition ({request.name}) in namespace ({request.namespace}): "
                    f'{NAD_PLURAL}.{NAD_GROUP} "{request.name}" not found'
                )
            configs.append(parse_config(nad))
        made: list[Attached] = []
        try:
            for index, (request, config) in enumerate(zip(requests, configs, strict=True), start=1):
                made.append(self._attach_one(netns, request, config, request.interface or f"net{index}"))
        except (AttachmentError, IpamError, commands.NetCommandError) as exc:
            self.release(made)
            raise AttachmentError(str(exc)) from None
        return made

    def _addresses(
        self, request: NetworkRequest, config: AttachmentConfig
    ) -> tuple[tuple[ipaddress.IPv4Interface, ...], str | None]:
        if request.ips:
            if config.ipam != "static":
                raise AttachmentError(f"{request.key}: 'ips' in the request needs static IPAM in the attachment")
            chosen = []
            for text in request.ips:
                require_bench(text, f"{request.key}: requested ip")
                chosen.append(ipaddress.IPv4Interface(text if "/" in text else f"{text}/32"))
            return tuple(chosen), None
        if config.ipam == "static":  # static addresses are the user's to keep unique, as with the static plugin
            return config.addresses, None
        if config.ipam == "host-local" and config.subnet is not None:
            key = f"{config.network}|{config.subnet}"
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    pool = self._pools[key] = RangePool(config.subnet, config.range_start, config.range_end)
            address = pool.allocate()
            return (ipaddress.IPv4Interface(f"{address}/{config.subnet.prefixlen}"),), key
        return (), None

    def _attach_one(self, netns: str, request: NetworkRequest, config: AttachmentConfig, ifname: str) -> Attached:
        addresses, pool_key = self._addresses(request, config)
        with self._lock:
            self._counter += 1
            counter = self._counter
        mac = request.mac or (
            mac_for(addresses[0].ip) if addresses else mac_for(ipaddress.IPv4Address(0x0A000000 + counter))
        )
        try:
            if config.kind == "bridge":
                bridge = self._bridge_for(config.bridge)
                host_end = ranges.attachment_veth_name(self.cluster_id, counter)
                commands.ip_batch(
                    [
                        f"link add {host_end} type veth peer name {ifname} address {mac} netns {netns}",
                        f"link set {host_end} master {bridge} up",
                    ]
                )
            else:
                if config.master != self.macvlan_parent:
                    raise AttachmentError(
                        f"{request.key}: macvlan master {config.master or '(none)'!r} is not a link this agent "
                        f"created; macvlan attachments may only use {self.macvlan_parent!r} (never a host interface)"
                    )
                commands.ip_batch(
                    [
                        f"link add link {config.master} name {ifname} netns {netns} address {mac} "
                        f"type macvlan mode {config.mode}"
                    ]
                )
            commands.ip_batch(
                [*(f"addr add {a.with_prefixlen} dev {ifname}" for a in addresses), f"link set {ifname} up"],
                netns=netns,
            )
        except (AttachmentError, commands.NetCommandError):
            if pool_key is not None:
                self._pools[pool_key].release(addresses[0].ip)
            raise
        return Attached(request=request, interface=ifname, addresses=addresses, mac=mac, pool_key=pool_key)

    def _bridge_for(self, name: str) -> str:
        with self._lock:
            bridge = self._bridges.get(name)
            if bridge is None:
                bridge = ranges.attachment_bridge_name(self.cluster_id, len(self._bridges))
                self.add_bridge(bridge)
                self._bridges[name] = bridge
            return bridge

    def release(self, attached: Sequence[Attached]) -> None:
        """Give the addresses back (the interfaces went with the pod's namespace)."""
        for item in attached:
            if item.pool_key is not None and item.addresses:
                self._pools[item.pool_key].release(item.addresses[0].ip)

    def bridges(self) -> list[str]:
        with self._lock:
            return list(self._bridges.values())


def nad_crd() -> dict[str, Any]:
    """The NetworkAttachmentDefinition CRD as Multus installs it, with the schema stored from Multus' own CRD
    (``harness/catalog/crd_schemas``), annotated with what provides it here."""
    from harness.catalog.validate import CRD_SCHEMA_DIR

    stored = json.loads((CRD_SCHEMA_DIR / NAD_GROUP / "networkattachmentdefinition_v1.json").read_text())
    schema = {k: v for k, v in stored.items() if not k.startswith("x-")}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{NAD_PLURAL}.{NAD_GROUP}",
            "annotations": {"aibench.io/provided-by": "the embedded target's pod network (harness/podnet)"},
        },
        "spec": {
            "group": NAD_GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": NAD_PLURAL,
                "singular": "network-attachment-definition",
                "kind": "NetworkAttachmentDefinition",
                "shortNames": ["net-attach-def"],
            },
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
        },
    }
