"""The pod network's data path: which CNI runs and whether kube-proxy or Cilium's eBPF replacement handles
Services.

Why beyond the capabilities' CNI names: Cilium with kube-proxy replacement serves ClusterIPs from eBPF (no
iptables/IPVS conntrack on the path), which changes Service latency and what a pod-to-pod probe through a Service
measures, so the report says which one is in place. Reads are optional (a restricted account may not read
kube-system ConfigMaps): unknown is reported as unknown, never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.forbidden import explain_forbidden
from harness.cluster.target import ClusterHandle

log = logging.getLogger(__name__)
_T = TypeVar("_T")

__all__ = ["DataPath", "data_path"]

CILIUM_CONFIG = ("kube-system", "cilium-config")
KUBE_PROXY = ("kube-system", "kube-proxy")


@dataclass(frozen=True, slots=True, kw_only=True)
class DataPath:
    cni: tuple[str, ...]
    kube_proxy: str  # "running", "absent" or "unknown"
    cilium_kube_proxy_replacement: str  # the cilium-config value ("true", "false", "strict"...), "" if no Cilium

    @property
    def service_path(self) -> str:
        """Who implements ClusterIPs: ``cilium-ebpf``, ``kube-proxy`` or ``unknown``."""
        if self.cilium_kube_proxy_replacement in ("true", "strict"):
            return "cilium-ebpf"
        if self.kube_proxy == "running":
            return "kube-proxy"
        return "unknown"


def _read(call: Callable[..., _T], *args: str, what: str) -> _T | None:
    try:
        return call(*args)
    except ApiException as exc:
        if exc.status in (403, 404):
            explanation = explain_forbidden(exc)
            log.log(logging.WARNING if exc.status == 403 else logging.INFO, "CNI data path: cannot read %s (%s)", what,
                    explanation or exc.status)  # fmt: skip
            return None
        raise


def data_path(cluster: ClusterHandle, cni: tuple[str, ...]) -> DataPath:
    """Read kube-proxy's DaemonSet and, with Cilium, its ``kube-proxy-replacement`` setting."""
    apps, core = client.AppsV1Api(cluster.api_client), client.CoreV1Api(cluster.api_client)
    ds = _read(apps.read_namespaced_daemon_set, KUBE_PROXY[1], KUBE_PROXY[0], what="the kube-proxy DaemonSet")
    listing = _read(apps.list_namespaced_daemon_set, KUBE_PROXY[0], what="kube-system DaemonSets")
    kube_proxy = "running" if ds is not None else ("absent" if listing is not None else "unknown")
    replacement = ""
    if "cilium" in cni:
        config = _read(core.read_namespaced_config_map, CILIUM_CONFIG[1], CILIUM_CONFIG[0], what="cilium-config")
        data = (config.data if config is not None else None) or {}
        replacement = str(data.get("kube-proxy-replacement", "unknown" if config is None else "false")).lower()
    return DataPath(cni=cni, kube_proxy=kube_proxy, cilium_kube_proxy_replacement=replacement)
