"""Scrape-target discovery for the embedded Prometheus: Services annotated ``prometheus.io/scrape: "true"``.

Debian's ``prometheus`` is built without ``kubernetes_sd_configs``, so the embedded target does the discovery
itself and hands Prometheus a ``file_sd`` list, which it re-reads within seconds: one target per ready endpoint
address of each annotated Service, with the labels kube-prometheus puts on endpoint targets (``namespace``,
``service``, ``pod``) and ``job`` = the Service name. ``prometheus.io/port`` picks the port (else the Service's
first), ``prometheus.io/path`` the path (else ``/metrics``). This is the community annotation convention that
pre-dates ServiceMonitor; clusters with the Prometheus Operator use ServiceMonitors instead.

The list lives in the Prometheus system service's ConfigMap (key ``targets.json``); the kubelet refreshes the
mounted file when the ConfigMap changes, as kube's kubelet does.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from harness.embedded.controllers.base import CONFIGMAPS, ContextController
from harness.embedded.controllers.endpoints import ENDPOINTS, SERVICES
from harness.embedded.store import Key, WatchEvent

log = logging.getLogger(__name__)

SCRAPE_ANNOTATION = "prometheus.io/scrape"
PORT_ANNOTATION = "prometheus.io/port"
PATH_ANNOTATION = "prometheus.io/path"
TARGETS_KEY = "targets.json"
#: where the targets go: the embedded Prometheus' config ConfigMap (harness.embedded.system_services)
TARGETS_CONFIGMAP = ("kube-system", "aibench-prometheus-config")


def scrape_targets(
    services: list[dict[str, Any]], endpoints: dict[tuple[str, str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """file_sd entries for every ready address of every annotated Service, sorted for a stable file."""
    out: list[dict[str, Any]] = []
    for svc in services:
        meta = svc["metadata"]
        annotations = meta.get("annotations") or {}
        if annotations.get(SCRAPE_ANNOTATION) != "true":
            continue
        namespace, name = meta.get("namespace", ""), meta["name"]
        path = annotations.get(PATH_ANNOTATION, "/metrics")
        wanted_port = annotations.get(PORT_ANNOTATION, "")
        for subset in (endpoints.get((namespace, name)) or {}).get("subsets") or []:
            ports = [p["port"] for p in subset.get("ports") or []]
            port = int(wanted_port) if wanted_port.isdigit() else (ports[0] if ports else None)
            if port is None:
                continue
            for address in subset.get("addresses") or []:
                labels = {"job": name, "namespace": namespace, "service": name, "__metrics_path__": path}
                if (ref := address.get("targetRef") or {}).get("kind") == "Pod":
                    labels["pod"] = ref["name"]
                out.append({"targets": [f"{address['ip']}:{port}"], "labels": labels})
    return sorted(out, key=lambda t: (t["labels"]["namespace"], t["labels"]["job"], t["targets"][0]))


class ScrapeTargetsController(ContextController):
    name = "scrape-targets"
    watches: tuple[Key, ...] = (SERVICES, ENDPOINTS, CONFIGMAPS)

    def work_for(self, event: WatchEvent) -> list[tuple[str, str]]:
        meta = event.obj["metadata"]
        if event.key == CONFIGMAPS and (meta.get("namespace"), meta["name"]) != TARGETS_CONFIGMAP:
            return []
        return [TARGETS_CONFIGMAP]

    def resync(self) -> list[tuple[str, str]]:
        return [TARGETS_CONFIGMAP]

    def reconcile(self, namespace: str, name: str) -> float | None:
        store = self.ctx.store
        config_map = store.find(CONFIGMAPS, namespace, name)
        if config_map is None:
            return None  # no embedded Prometheus (not installed, or system services off)
        services = list(store.iter(SERVICES))
        endpoints = {(ep["metadata"].get("namespace", ""), ep["metadata"]["name"]): ep for ep in store.iter(ENDPOINTS)}
        text = json.dumps(scrape_targets(services, endpoints), indent=1) + "\n"
        if (config_map.get("data") or {}).get(TARGETS_KEY) == text:
            return None

        def change(obj: dict[str, Any]) -> bool:
            obj.setdefault("data", {})[TARGETS_KEY] = text
            return True

        store.mutate(self.ctx.rtype(CONFIGMAPS), namespace, name, change)
        log.debug("scrape targets updated: %d", text.count('"targets"'))
        return None


__all__ = ["SCRAPE_ANNOTATION", "TARGETS_CONFIGMAP", "ScrapeTargetsController", "scrape_targets"]
