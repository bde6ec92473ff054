"""discovery.k8s.io/v1 EndpointSlice controller: the slices kube keeps beside each selector Service's Endpoints.

Clients of the modern API (kube-proxy, CoreDNS, Gateway implementations, ``kubectl get endpointslices``) read
slices, not Endpoints. One slice per Service and resolved port list (kube's controller packs up to 100 endpoints
per slice; a Service here rarely has more, so a second slice only appears when pods resolve a named port
differently), named ``<service>-<5 random characters>`` and labelled ``kubernetes.io/service-name`` and
``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io``, owned by the Service. Each endpoint
carries kube's conditions: ``ready`` (pod Ready and not terminating, or ``publishNotReadyAddresses``),
``serving`` (pod Ready), ``terminating``.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from harness.embedded import apierrors
from harness.embedded.controllers.endpoints import ServicePodsController, resolve_port, selects_pods
from harness.embedded.objects import owner_reference
from harness.embedded.podstate import pod_ready, pod_terminal
from harness.embedded.store import Key

log = logging.getLogger(__name__)

ENDPOINTSLICES: Key = ("discovery.k8s.io", "endpointslices")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # kube's utilrand alphabet (no vowels, no confusables)

PortKey = tuple[tuple[str, int, str], ...]


def _suffix() -> str:
    return "".join(random.choices(_SUFFIX_ALPHABET, k=5))  # a name, not a secret


class EndpointSliceController(ServicePodsController):
    name = "endpointslice"

    def _existing(self, namespace: str, service: str) -> list[dict[str, Any]]:
        return [
            s
            for s in self.ctx.store.iter(ENDPOINTSLICES, namespace)
            if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == service
            and (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY
        ]

    def primary_gone(self, namespace: str, name: str) -> None:
        for stale in self._existing(namespace, name):  # the Service is gone: its managed slices go too
            self._delete(stale)

    def sync(self, namespace: str, name: str, svc: dict[str, Any]) -> float | None:
        existing = self._existing(namespace, name)
        spec = svc.get("spec") or {}
        if not selects_pods(spec):
            for stale in existing:  # the Service no longer selects: its managed slices go
                self._delete(stale)
            return None
        pods = self.selected_pods(namespace, name, spec)
        if pods is None:
            return None
        wanted = self._slices(svc, pods)
        by_ports: dict[PortKey, dict[str, Any]] = {}
        for current in existing:
            key = tuple(
                (p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP")
                for p in current.get("ports") or ()
            )
            if key in by_ports or key not in wanted:
                self._delete(current)
            else:
                by_ports[key] = current
        labels = dict(svc["metadata"].get("labels") or {})
        labels.update({SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY})
        if spec.get("clusterIP") == "None":
            labels["service.kubernetes.io/headless"] = ""
        for key, endpoints in wanted.items():
            ports = [{"name": n, "port": number, "protocol": proto} for n, number, proto in key]
            slice_now = by_ports.get(key)
            if slice_now is None:
                self._create(svc, labels, endpoints, ports)
            elif slice_now.get("endpoints") != endpoints or slice_now["metadata"].get("labels") != labels:

                def change(obj: dict[str, Any], endpoints: list[dict[str, Any]] = endpoints) -> bool:
                    obj["endpoints"] = endpoints
                    obj["metadata"]["labels"] = labels
                    return True

                self.ctx.store.mutate(self.ctx.rtype(ENDPOINTSLICES), namespace, slice_now["metadata"]["name"], change)
        return None

    def _slices(self, svc: dict[str, Any], pods: list[dict[str, Any]]) -> dict[PortKey, list[dict[str, Any]]]:
        spec = svc.get("spec") or {}
        publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
        out: dict[PortKey, list[dict[str, Any]]] = {}
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            ip = (pod.get("status") or {}).get("podIP")
            if not ip or pod_terminal(pod):
                continue
            ports: list[tuple[str, int, str]] = []
            for sport in spec.get("ports") or ():
                number = resolve_port(pod, sport.get("targetPort", sport.get("port")))
                if number is not None:
                    ports.append((sport.get("name") or "", int(number), sport.get("protocol") or "TCP"))
            if spec.get("ports") and not ports:
                continue
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            serving = pod_ready(pod)
            endpoint: dict[str, Any] = {
                "addresses": [ip],
                "conditions": {
                    "ready": publish_not_ready or (serving and not terminating),
                    "serving": serving,
                    "terminating": terminating,
                },
                "targetRef": {
                    "kind": "Pod",
                    "namespace": pod["metadata"].get("namespace", ""),
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            }
            pod_spec = pod.get("spec") or {}
            if pod_spec.get("nodeName"):
                endpoint["nodeName"] = pod_spec["nodeName"]
            if pod_spec.get("hostname") and pod_spec.get("subdomain") == svc["metadata"]["name"]:
                endpoint["hostname"] = pod_spec["hostname"]
            out.setdefault(tuple(ports), []).append(endpoint)
        if not out:
            # kube keeps one empty slice per Service so watchers see "no endpoints" rather than "not yet known".
            out[()] = []
        return out

    def _create(
        self, svc: dict[str, Any], labels: dict[str, str], endpoints: list[dict[str, Any]], ports: list[dict[str, Any]]
    ) -> None:
        namespace = svc["metadata"]["namespace"]
        obj: dict[str, Any] = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{svc['metadata']['name']}-{_suffix()}",
                "labels": labels,
                "ownerReferences": [owner_reference(svc)],
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        }
        try:
            self.ctx.create(self.ctx.rtype(ENDPOINTSLICES), namespace, obj)
        except apierrors.ApiError as err:
            if err.code not in (403, 404, 409):
                raise
            log.debug("endpointslice for %s/%s not created: %s", namespace, svc["metadata"]["name"], err.message)

    def _delete(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            self.ctx.store.delete(self.ctx.rtype(ENDPOINTSLICES), meta["namespace"], meta["name"])
        except apierrors.ApiError as err:
            log.debug("endpointslice %s/%s: %s", meta["namespace"], meta["name"], err.message)
