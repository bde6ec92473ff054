"""kube-proxy's part of the node: each Service's ClusterIP ports routed to its endpoints on this host.

Through the pod network's nftables DNAT (:class:`harness.podnet.dataplane.PodNetwork`) when the host has one, else a
userspace proxy on the host network (:class:`harness.embedded.network.ServiceProxy`). Only endpoints on this host's
process nodes are routed: emulated nodes run no process that could answer.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from harness.embedded.network import Backend, ServiceProxy
from harness.node.api import NodeApi
from harness.podnet.dataplane import PodNetwork

__all__ = ["ENDPOINTS", "SERVICES", "ServiceRouting"]

SERVICES = ("", "services")
ENDPOINTS = ("", "endpoints")


class ServiceRouting:
    """Routes Services' ClusterIPs; ``apiserver`` (when set) backs ``default/kubernetes``."""

    def __init__(self, api: NodeApi, process_nodes: Collection[str]) -> None:
        self.api = api
        self.apiserver: Backend | None = None  # the `kubernetes` Service's endpoint, when pods reach it through it
        self._process_nodes = process_nodes
        self._proxy: ServiceProxy | PodNetwork | None = None

    def start(self, podnet: PodNetwork | None) -> None:
        self._proxy = podnet if podnet is not None else ServiceProxy()

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()

    def remove(self, service: dict[str, Any]) -> None:
        """A deleted Service's ClusterIP routes go."""
        ip = service.get("spec", {}).get("clusterIP")
        if ip and ip != "None" and self._proxy is not None:
            self._proxy.remove(ip)

    def sync(self, namespace: str, name: str) -> None:
        """Route the Service's ports to its current endpoints (none routed: the port refuses)."""
        if self._proxy is None:
            return
        svc = self.api.find(SERVICES, namespace, name)
        if svc is None:
            return
        cluster_ip = svc.get("spec", {}).get("clusterIP")
        if not cluster_ip or cluster_ip == "None":
            return
        if (namespace, name) == ("default", "kubernetes"):  # the API server itself, where the cluster says it is
            if self.apiserver is not None:
                for port in svc["spec"].get("ports") or []:
                    self._proxy.sync(cluster_ip, int(port["port"]), [self.apiserver])
            return
        endpoints = self.api.find(ENDPOINTS, namespace, name) or {}
        for port in svc["spec"].get("ports") or []:
            backends: list[Backend] = []
            for subset in endpoints.get("subsets") or []:
                ep_port = next(
                    (p["port"] for p in subset.get("ports") or [] if p.get("name", "") == port.get("name", "")), None
                )
                if ep_port is None:
                    continue
                for address in subset.get("addresses") or []:
                    if address.get("nodeName") in self._process_nodes:
                        backends.append(Backend(address["ip"], int(ep_port)))
            self._proxy.sync(cluster_ip, int(port["port"]), backends)
