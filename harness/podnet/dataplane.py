"""The pod network of one cluster, as the kubelet drives it: attach/detach pods, sync Services, enforce policy.

``PodNetwork.create()`` sweeps leftovers of dead clusters, picks subnets no live cluster on this machine holds and
builds the host side; :func:`unavailable_reason` says beforehand why a host cannot have one (then the kubelet
keeps today's host network and says so). The Service half keeps the userspace proxy's shape,
``sync(address, port, backends)`` / ``remove(address, port)`` / ``stop()``, so the kubelet drives either.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.embedded.network import Backend
from harness.labels import POD_NETWORK_ANNOTATION
from harness.podnet import bandwidth, commands, host, pods, ranges, services
from harness.podnet.attachments import (
    DEFAULT_NETWORK,
    NETWORKS_ANNOTATION,
    STATUS_ANNOTATION,
    Attached,
    AttachmentError,
    Attachments,
    NadLookup,
    network_status,
)
from harness.podnet.ipam import RangePool
from harness.podnet.policy import PolicyKey
from harness.podnet.policyagent import APPLY_WORKERS, PolicyAgent, Snapshot

log = logging.getLogger(__name__)

SVC_TABLE = "aibsvc"


def unavailable_reason() -> str | None:
    return commands.unavailable_reason()


@dataclass(frozen=True, slots=True, kw_only=True)
class PodAttachment:
    """What the kubelet needs of an attached pod."""

    ip: str
    netns_path: Path
    annotations: Mapping[str, str]


@dataclass(slots=True, kw_only=True)
class _Pod:
    netns: pods.PodNetns
    attached: list[Attached]


class PodNetwork:
    """One cluster's pod network (root namespace side, every pod namespace, Services, policy)."""

    def __init__(
        self,
        *,
        state_root: Path = host.STATE_ROOT,
        pod_subnet: ipaddress.IPv4Network | None = None,
        service_subnet: ipaddress.IPv4Network | None = None,
    ) -> None:
        """Subnets are picked for an embedded cluster; a node of another control plane is given its own (the
        node's podCIDR, the cluster's Service CIDR), which must lie in 198.18.0.0/15 like everything here."""
        for given in (pod_subnet, service_subnet):
            if given is not None and not ranges.in_bench_range(given):
                raise ValueError(f"{given} is outside {ranges.BENCH_RANGE}: the pod network never leaves it")
        self.cluster_id = ranges.new_cluster_id()
        with host.reservation_lock(state_root):
            taken = host.sweep(state_root) + host.routed_subnets()
            for given in (pod_subnet, service_subnet):
                busy = next((t for t in taken if given is not None and given.overlaps(t)), None)
                if busy is not None:
                    raise ValueError(f"{given} overlaps {busy}, in use by another cluster on this machine")
            self.pod_subnet = pod_subnet or ranges.pick_subnet(ranges.POD_RANGE, taken)
            self.service_subnet = service_subnet or ranges.pick_subnet(ranges.SERVICE_RANGE, taken)
            host.reserve(state_root, self.cluster_id, (self.pod_subnet, self.service_subnet))
        self.host = host.HostNetwork(
            cluster_id=self.cluster_id,
            pod_subnet=self.pod_subnet,
            service_subnet=self.service_subnet,
            state_root=state_root,
        )
        self.gateway = str(self.host.gateway)
        self._ips = RangePool(self.pod_subnet, reserved=frozenset({self.host.gateway}))
        self._attachments = Attachments(self.cluster_id, self._add_bridge)
        self._services: dict[services.ServiceKey, tuple[Backend, ...]] = {}
        self._pods: dict[str, _Pod] = {}
        self._index = 0
        self._lock = threading.RLock()
        self._policy: PolicyAgent | None = None
        self._started = False

    @classmethod
    def create(cls, *, state_root: Path = host.STATE_ROOT) -> PodNetwork:
        network = cls(state_root=state_root)
        network.start()
        return network

    def start(self) -> None:
        """Build the host side (the constructor only chose names and subnets); undone if any step fails."""
        if self._started:
            return
        try:
            self.host.setup()
        except Exception:
            self.host.teardown()
            raise
        self._started = True
        log.info(
            "pod network %s: bridge %s, pods %s, Services %s",
            self.cluster_id,
            self.host.bridge,
            self.pod_subnet,
            self.service_subnet,
        )

    # ------------------------------------------------------------------ descriptions
    def describe(self) -> str:
        return (
            f"pod-netns (bridge {self.host.bridge}, pods {self.pod_subnet}, Services {self.service_subnet}: "
            "nftables DNAT; NetworkPolicy: nftables per pod; attachments: bridge/macvlan)"
        )

    def node_annotation(self) -> str:
        """What the node offers, for capability discovery (JSON on the Node's ``aibench.io/pod-network``)."""
        return json.dumps(
            {
                "mode": "netns",
                "provider": DEFAULT_NETWORK,
                "pod_cidr": str(self.pod_subnet),
                "service_cidr": str(self.service_subnet),
                "network_policy": "nftables",
                "attachments": "multus-compatible (bridge, macvlan; host-local, static)",
                "macvlan_parent": self._attachments.macvlan_parent,
                "secondary_range": str(ranges.SECONDARY_RANGE),
            },
            sort_keys=True,
        )

    # ------------------------------------------------------------------ pods
    def attach(self, pod: Mapping[str, Any], lookup: NadLookup) -> PodAttachment:
        """Namespace, address, secondary interfaces, bandwidth, Service and policy tables; all or nothing.

        Raises :class:`AttachmentError` (a missing NAD: :class:`~harness.podnet.attachments.NadNotFound`) or
        :class:`~harness.podnet.bandwidth.BandwidthError` for what the pod asks and cannot get.
        """
        meta = pod["metadata"]
        annotations: Mapping[str, str] = meta.get("annotations") or {}
        ingress_bps, egress_bps = bandwidth.limits(annotations)
        address = self._ips.allocate()
        with self._lock:
            self._index += 1
            index = self._index
        try:
            netns = pods.create(
                cluster_id=self.cluster_id,
                index=index,
                address=address,
                subnet=self.pod_subnet,
                gateway=self.host.gateway,
                bridge=self.host.bridge,
            )
        except Exception:
            self._ips.release(address)
            raise
        attached: list[Attached] = []
        try:
            if annotations.get(NETWORKS_ANNOTATION):
                attached = self._attachments.attach(
                    netns=netns.netns,
                    pod_namespace=meta.get("namespace", "default"),
                    annotation=annotations[NETWORKS_ANNOTATION],
                    lookup=lookup,
                )
            if ingress_bps is not None or egress_bps is not None:
                bandwidth.apply(
                    host_veth=netns.host_veth, netns=netns.netns, ingress_bps=ingress_bps, egress_bps=egress_bps
                )
            addressed = {**pod, "status": {**(pod.get("status") or {}), "podIP": str(address)}}
            with self._lock:
                text = self._service_table(pod=True, replace=False)
                if self._policy is not None:
                    text += self._policy.initial_table(addressed)
                commands.nft(text, netns=netns.netns)
                self._pods[str(meta["uid"])] = _Pod(netns=netns, attached=attached)
        except Exception:
            self._attachments.release(attached)
            pods.delete(netns)
            self._ips.release(address)
            raise
        # peers' tables learn this pod's address from the store event that publishes it (the agent's snapshot)
        status = network_status(str(address), netns.mac, attached)
        return PodAttachment(ip=str(address), netns_path=netns.path, annotations={STATUS_ANNOTATION: status})

    def detach(self, uid: str) -> None:
        with self._lock:
            pod = self._pods.pop(uid, None)
        if pod is None:
            return
        if self._policy is not None:
            self._policy.forget(uid)
        pods.delete(pod.netns)
        self._attachments.release(pod.attached)
        self._ips.release(pod.netns.address)

    def netns_of(self, uid: str) -> Path | None:
        with self._lock:
            pod = self._pods.get(uid)
        return pod.netns.path if pod is not None else None

    # ------------------------------------------------------------------ Services (the proxy's shape)
    def sync(self, address: str, port: int, backends: Sequence[Backend], protocol: str = "tcp") -> None:
        """Make ``address:port`` DNAT to ``backends`` everywhere (none: connections are refused)."""
        if ipaddress.IPv4Address(address) not in self.service_subnet:
            raise ValueError(f"ClusterIP {address} is outside this cluster's Service range {self.service_subnet}")
        for backend in backends:
            services.check_backend(backend.ip)
        key = (address, int(port), protocol.lower())
        normalized = tuple(Backend(b.ip, int(b.port)) for b in backends)
        with self._lock:
            if self._services.get(key) == normalized:
                return
            self._services[key] = normalized
            self._apply_services()

    def remove(self, address: str, port: int | None = None) -> None:
        with self._lock:
            gone = [k for k in self._services if k[0] == address and (port is None or k[1] == port)]
            for key in gone:
                del self._services[key]
            if gone:
                self._apply_services()

    def _service_table(self, *, pod: bool, replace: bool = True) -> str:
        return services.render_service_table(
            SVC_TABLE,
            self._services,
            service_cidr=str(self.service_subnet),
            gateway=self.gateway if pod else None,
            replace=replace,
        )

    def _apply_root(self) -> None:
        self.host.apply_table(
            services.dnat_rules(self._services, gateway=None),
            services.localnet_rules(self._services, bridge=self.host.bridge, gateway=self.gateway),
        )

    def _apply_services(self) -> None:
        self._apply_root()
        text = self._service_table(pod=True)

        def apply(netns: str) -> None:
            try:
                commands.nft(text, netns=netns)
            except commands.NetCommandError as exc:  # a pod being torn down
                log.warning("Service table not applied in %s: %s", netns, exc)

        namespaces = [p.netns.netns for p in self._pods.values()]
        with ThreadPoolExecutor(max_workers=APPLY_WORKERS, thread_name_prefix="aibench-svc-apply") as pool:
            list(pool.map(apply, namespaces))

    def _add_bridge(self, name: str) -> None:
        with self._lock:
            self.host.add_bridge(name)
            self._apply_root()

    # ------------------------------------------------------------------ NetworkPolicy
    def start_policy_agent(
        self, snapshot: Callable[[], Snapshot], report: Callable[[PolicyKey, tuple[str, ...]], None]
    ) -> PolicyAgent:
        def targets() -> dict[str, str]:
            with self._lock:
                return {uid: p.netns.netns for uid, p in self._pods.items()}

        def apply(netns: str, text: str) -> None:
            commands.nft(text, netns=netns)

        self._policy = PolicyAgent(
            snapshot=snapshot, targets=targets, apply=apply, report=report, host_address=self.gateway
        )
        self._policy.start()
        return self._policy

    @property
    def policy(self) -> PolicyAgent | None:
        return self._policy

    # ------------------------------------------------------------------ teardown
    def stop(self) -> None:
        """Every pod namespace, link and table of this cluster goes; the blackhole route stays."""
        if self._policy is not None:
            self._policy.stop()
        with self._lock:
            uids = list(self._pods)
        for uid in uids:
            self.detach(uid)
        if self._started:
            self._started = False
            self.host.teardown()


__all__ = ["POD_NETWORK_ANNOTATION", "AttachmentError", "PodAttachment", "PodNetwork", "unavailable_reason"]
