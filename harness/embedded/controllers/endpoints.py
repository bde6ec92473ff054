"""v1 Endpoints controller: one Endpoints object per Service with a selector, kept in step with its pods.

Clients, the embedded service proxy and DNS read these, so the shape follows kube's endpoints controller: pods
with an IP are split into ``addresses`` (Ready, or ``publishNotReadyAddresses``) and ``notReadyAddresses``;
addresses with identical resolved port lists share a subset (a named ``targetPort`` resolves per pod, so pods that
name it differently land in different subsets); ``hostname`` is set for pods whose ``subdomain`` is the Service.
"""

from __future__ import annotations

import logging
from typing import Any

from harness.embedded import apierrors
from harness.embedded.controllers.base import PODS, PrimaryController
from harness.embedded.podstate import pod_ready, pod_terminal
from harness.embedded.selectors import SelectorError, label_selector_from_object
from harness.embedded.store import Key, Store, WatchEvent

log = logging.getLogger(__name__)

SERVICES: Key = ("", "services")
ENDPOINTS: Key = ("", "endpoints")


def selects(service: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = (service.get("spec") or {}).get("selector")
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def resolve_port(pod: dict[str, Any], target: Any) -> int | None:
    if isinstance(target, int):
        return target
    text = str(target)
    if text.isdigit():
        return int(text)
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("name") == text:
                number = port.get("containerPort")
                return int(number) if number is not None else None
    return None


def services_for(event: WatchEvent, store: Store) -> list[tuple[str, str]]:
    """The Services an event concerns: the Service itself, or every Service selecting the pod (before or after
    its labels changed, so a pod leaving a selector is dropped from the old Service's endpoints)."""
    meta = event.obj["metadata"]
    namespace = meta.get("namespace", "")
    if event.key == SERVICES:
        return [(namespace, meta["name"])]
    labels = meta.get("labels") or {}
    prev_labels = (event.prev or {}).get("metadata", {}).get("labels") or {}
    return [
        (namespace, svc["metadata"]["name"])
        for svc in store.iter(SERVICES, namespace)
        if selects(svc, labels) or (event.prev is not None and selects(svc, prev_labels))
    ]


def selects_pods(spec: dict[str, Any]) -> bool:
    """Whether a Service's endpoints come from its selector; those of a Service without one, or of an ExternalName
    Service, are the user's to write."""
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


class ServicePodsController(PrimaryController):
    """A controller of Services that follows the pods they select (Endpoints, EndpointSlices): a Service is
    reconciled when it changes or when a pod it selects (before or after a label change) does."""

    primary: Key = SERVICES
    watches: tuple[Key, ...] = (SERVICES, PODS)

    def work_for(self, event: WatchEvent) -> list[tuple[str, str]]:
        return services_for(event, self.ctx.store)

    def selected_pods(self, namespace: str, name: str, spec: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The pods of the namespace that the Service's selector matches; None (logged) when it is unusable."""
        try:
            selector = label_selector_from_object({"matchLabels": spec["selector"]})
        except SelectorError as err:
            log.info("service %s/%s has an unusable selector: %s", namespace, name, err)
            return None
        return [p for p in self.ctx.store.iter(PODS, namespace) if selector.matches(p["metadata"].get("labels") or {})]


class EndpointsController(ServicePodsController):
    name = "endpoints"

    def primary_gone(self, namespace: str, name: str) -> None:
        if self.ctx.store.find(ENDPOINTS, namespace, name) is None:
            return
        try:
            self.ctx.store.delete(self.ctx.rtype(ENDPOINTS), namespace, name)
        except apierrors.ApiError as err:
            log.debug("endpoints %s/%s: %s", namespace, name, err.message)

    def sync(self, namespace: str, name: str, svc: dict[str, Any]) -> float | None:
        store = self.ctx.store
        existing = store.find(ENDPOINTS, namespace, name)
        spec = svc.get("spec") or {}
        if not selects_pods(spec):
            return None  # user-managed endpoints
        pods = self.selected_pods(namespace, name, spec)
        if pods is None:
            return None
        subsets = self._subsets(svc, pods)
        labels = dict(svc["metadata"].get("labels") or {})
        if spec.get("clusterIP") == "None":
            labels["service.kubernetes.io/headless"] = ""
        if existing is None:
            obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name}}
            if labels:
                obj["metadata"]["labels"] = labels
            if subsets:
                obj["subsets"] = subsets
            try:
                self.ctx.create(self.ctx.rtype(ENDPOINTS), namespace, obj)
            except apierrors.ApiError as err:
                if err.code not in (403, 404, 409):
                    raise
                log.debug("endpoints %s/%s not created: %s", namespace, name, err.message)
            return None
        if existing.get("subsets") == (subsets or None) and (existing["metadata"].get("labels") or {}) == labels:
            return None

        def change(obj: dict[str, Any]) -> bool:
            if subsets:
                obj["subsets"] = subsets
            else:
                obj.pop("subsets", None)
            if labels:
                obj["metadata"]["labels"] = labels
            else:
                obj["metadata"].pop("labels", None)
            return True

        store.mutate(self.ctx.rtype(ENDPOINTS), namespace, name, change)
        return None

    def _subsets(self, svc: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
        spec = svc.get("spec") or {}
        svc_name = svc["metadata"]["name"]
        publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
        groups: dict[tuple[tuple[str, int, str], ...], dict[str, list[dict[str, Any]]]] = {}
        for pod in pods:
            pod_spec = pod.get("spec") or {}
            ip = (pod.get("status") or {}).get("podIP")
            if not ip or pod_terminal(pod):
                continue
            if pod["metadata"].get("deletionTimestamp") and not publish_not_ready:
                continue
            ports: list[tuple[str, int, str]] = []
            for sport in spec.get("ports") or ():
                number = resolve_port(pod, sport.get("targetPort", sport.get("port")))
                if number is None:
                    continue
                ports.append((sport.get("name") or "", int(number), sport.get("protocol") or "TCP"))
            if spec.get("ports") and not ports:
                continue
            address: dict[str, Any] = {"ip": ip}
            if pod_spec.get("hostname") and pod_spec.get("subdomain") == svc_name:
                address["hostname"] = pod_spec["hostname"]
            if pod_spec.get("nodeName"):
                address["nodeName"] = pod_spec["nodeName"]
            address["targetRef"] = {
                "kind": "Pod",
                "namespace": pod["metadata"].get("namespace", ""),
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            }
            bucket = groups.setdefault(tuple(ports), {"addresses": [], "notReadyAddresses": []})
            ready = publish_not_ready or pod_ready(pod)
            bucket["addresses" if ready else "notReadyAddresses"].append(address)
        subsets: list[dict[str, Any]] = []
        for ports_key in sorted(groups):
            bucket = groups[ports_key]
            subset: dict[str, Any] = {}
            for field in ("addresses", "notReadyAddresses"):
                if bucket[field]:
                    subset[field] = sorted(bucket[field], key=lambda a: (_ip_key(a["ip"]), a["targetRef"]["name"]))
            if ports_key:
                subset["ports"] = [
                    {**({"name": pname} if pname else {}), "port": number, "protocol": proto}
                    for pname, number, proto in ports_key
                ]
            subsets.append(subset)
        return subsets


def _ip_key(ip: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in ip.split("."))
    except ValueError:
        return (0,)
