"""kube-state-metrics for the embedded target: the object-state metric families dashboards and capacity queries use.

kube-state-metrics is a separate program that lists and watches the API and exposes object state; Debian does not
package it. The embedded control plane already holds every object, so it serves the same families itself, with
kube-state-metrics' names, labels and resource/unit conventions (v2: ``nvidia.com/gpu`` -> ``nvidia_com_gpu``,
units ``core``/``byte``/``integer``), from a snapshot of the store on each scrape. It is offered as the Service
``kube-system/kube-state-metrics`` (annotated for scraping, described as built into the embedded target) whose
endpoint is this server on 127.0.0.1.

Families: kube_node_info, kube_node_status_capacity, kube_node_status_allocatable, kube_node_status_condition,
kube_node_spec_taint, kube_pod_info, kube_pod_status_phase, kube_pod_container_resource_requests,
kube_pod_container_resource_limits, kube_namespace_status_phase. Not the rest of kube-state-metrics' ~200.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.embedded.serverthread import ServerThread
from harness.embedded.store import Store
from harness.quantity import parse_quantity

log = logging.getLogger(__name__)

_NODES = ("", "nodes")
_PODS = ("", "pods")
_NAMESPACES = ("", "namespaces")
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
_HELP = {
    "kube_node_info": "Information about a cluster node.",
    "kube_node_status_capacity": "The capacity for different resources of a node.",
    "kube_node_status_allocatable": (
        "The allocatable for different resources of a node that are available for scheduling."
    ),
    "kube_node_status_condition": "The condition of a cluster node.",
    "kube_node_spec_taint": "The taint of a cluster node.",
    "kube_pod_info": "Information about pod.",
    "kube_pod_status_phase": "The pods current phase.",
    "kube_pod_container_resource_requests": "The number of requested request resource by a container.",
    "kube_pod_container_resource_limits": "The number of requested limit resource by a container.",
    "kube_namespace_status_phase": "kubernetes namespace status phase.",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, labels: Mapping[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    number = float(value)
    text = str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)  # never rounded
    return f"{name}{{{inner}}} {text}"


def resource_labels(resource: str) -> tuple[str, str]:
    """kube-state-metrics' (resource, unit) for a Kubernetes resource name."""
    if resource == "cpu":
        return "cpu", "core"
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return resource.replace("-", "_").replace(".", "_").replace("/", "_"), "byte"
    return resource.replace("-", "_").replace(".", "_").replace("/", "_"), "integer"


def _resources(name: str, base: Mapping[str, str], amounts: Mapping[str, Any]) -> Iterator[str]:
    for resource, quantity in sorted(amounts.items()):
        try:
            value = float(parse_quantity(str(quantity)))
        except ValueError:
            continue
        res, unit = resource_labels(resource)
        yield _line(name, {**base, "resource": res, "unit": unit}, value)


def render(
    nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]], namespaces: Iterable[Mapping[str, Any]]
) -> str:
    """The exposition text for these objects (pure: tested on plain dicts)."""
    families: dict[str, list[str]] = {name: [] for name in _HELP}
    for node in nodes:
        name = node["metadata"]["name"]
        status = node.get("status") or {}
        info = status.get("nodeInfo") or {}
        internal = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "")
        families["kube_node_info"].append(
            _line(
                "kube_node_info",
                {
                    "node": name,
                    "kernel_version": info.get("kernelVersion", ""),
                    "os_image": info.get("osImage", ""),
                    "container_runtime_version": info.get("containerRuntimeVersion", ""),
                    "kubelet_version": info.get("kubeletVersion", ""),
                    "internal_ip": internal,
                },
                1,
            )
        )
        families["kube_node_status_capacity"] += _resources(
            "kube_node_status_capacity", {"node": name}, status.get("capacity") or {}
        )
        families["kube_node_status_allocatable"] += _resources(
            "kube_node_status_allocatable", {"node": name}, status.get("allocatable") or {}
        )
        for cond in status.get("conditions") or []:
            for state in ("true", "false", "unknown"):
                families["kube_node_status_condition"].append(
                    _line(
                        "kube_node_status_condition",
                        {"node": name, "condition": cond.get("type", ""), "status": state},
                        1 if str(cond.get("status", "")).lower() == state else 0,
                    )
                )
        for taint in (node.get("spec") or {}).get("taints") or []:
            families["kube_node_spec_taint"].append(
                _line(
                    "kube_node_spec_taint",
                    {
                        "node": name,
                        "key": taint.get("key", ""),
                        "value": taint.get("value", ""),
                        "effect": taint.get("effect", ""),
                    },
                    1,
                )
            )
    for pod in pods:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        base = {"namespace": meta.get("namespace", ""), "pod": meta["name"], "uid": meta.get("uid", "")}
        owner: dict[str, Any] = next(iter(meta.get("ownerReferences") or []), {})
        families["kube_pod_info"].append(
            _line(
                "kube_pod_info",
                {
                    **base,
                    "node": spec.get("nodeName", ""),
                    "host_ip": status.get("hostIP", ""),
                    "pod_ip": status.get("podIP", ""),
                    "created_by_kind": owner.get("kind", ""),
                    "created_by_name": owner.get("name", ""),
                    "priority_class": spec.get("priorityClassName", ""),
                    "host_network": str(bool(spec.get("hostNetwork", False))).lower(),
                },
                1,
            )
        )
        phase = status.get("phase", "Pending")
        families["kube_pod_status_phase"] += [
            _line("kube_pod_status_phase", {**base, "phase": p}, 1 if p == phase else 0) for p in POD_PHASES
        ]
        for container in spec.get("containers") or []:
            cbase = {**base, "container": container.get("name", ""), "node": spec.get("nodeName", "")}
            resources = container.get("resources") or {}
            families["kube_pod_container_resource_requests"] += _resources(
                "kube_pod_container_resource_requests", cbase, resources.get("requests") or {}
            )
            families["kube_pod_container_resource_limits"] += _resources(
                "kube_pod_container_resource_limits", cbase, resources.get("limits") or {}
            )
    for namespace in namespaces:
        phase = (namespace.get("status") or {}).get("phase", "Active")
        families["kube_namespace_status_phase"] += [
            _line(
                "kube_namespace_status_phase", {"namespace": namespace["metadata"]["name"], "phase": p}, int(p == phase)
            )
            for p in ("Active", "Terminating")
        ]
    out: list[str] = []
    for name, lines in families.items():
        out += [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} gauge", *lines]
    return "\n".join(out) + "\n"


class StateMetricsServer:
    """``/metrics`` and ``/healthz`` on ``host`` (127.0.0.1, or the pod network's gateway address so pods in their
    own network namespaces can scrape it) and an ephemeral port, rendered from the store on each request."""

    def __init__(self, store: Store, host: str = "127.0.0.1") -> None:
        self.store = store
        self.host = host
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.debug("state-metrics %s " + format, self.address_string(), *args)

            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    body = server.render().encode()
                    content_type = "text/plain; version=0.0.4; charset=utf-8"
                elif self.path == "/healthz":
                    body, content_type = b"OK", "text/plain"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        http = ThreadingHTTPServer((host, 0), Handler)
        http.daemon_threads = True
        self._serving = ServerThread(http, name="aibench-state-metrics")

    @property
    def port(self) -> int:
        return self._serving.port

    def render(self) -> str:
        return render(self.store.iter(_NODES), self.store.iter(_PODS), self.store.iter(_NAMESPACES))

    def start(self) -> None:
        self._serving.start()

    def stop(self) -> None:
        self._serving.stop()


__all__ = ["POD_PHASES", "StateMetricsServer", "render", "resource_labels"]
