"""The ``services/<name>/proxy`` subresource: the API server forwards an HTTP request to one ready endpoint.

Why: on a real cluster the harness runs outside the pod network, and the one sanctioned way to read an in-cluster
HTTP service (Prometheus, Grafana, an exporter) with nothing but a kubeconfig is the API server's service proxy
(what ``kubectl get --raw /api/v1/namespaces/monitoring/services/prometheus-k8s:9090/proxy/api/v1/query`` uses).
The embedded target offers the same path, so the harness code that queries Prometheus is one code path for both.

Name forms are kube's: ``name``, ``name:port`` (number or port name) and ``scheme:name:port``; only ``http`` is
proxied. Like kube, the request goes to a ready endpoint address, not the ClusterIP; a Service without ready
endpoints answers 503 "no endpoints available for service".
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.embedded import apierrors
from harness.embedded.store import Store

_SERVICES = ("", "services")
_ENDPOINTS = ("", "endpoints")
PROXY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyResponse:
    status: int
    content_type: str
    body: bytes


def _split_name(spec: str) -> tuple[str, str, str]:
    """``[scheme:]name[:port]`` -> (scheme, name, port)."""
    parts = spec.split(":")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return "http", parts[0], parts[1]
    return "http", parts[0], ""


def _target(store: Store, namespace: str, spec: str) -> tuple[str, int]:
    scheme, name, port_ref = _split_name(spec)
    if scheme not in ("", "http"):
        raise apierrors.bad_request(f"the embedded target proxies http only, not {scheme!r}")
    service = store.find(_SERVICES, namespace, name)
    if service is None:
        raise apierrors.ApiError(404, "NotFound", f'services "{name}" not found')
    ports: list[dict[str, Any]] = service.get("spec", {}).get("ports") or []
    if port_ref:
        chosen = next((p for p in ports if p.get("name") == port_ref or str(p.get("port")) == port_ref), None)
    else:
        chosen = ports[0] if len(ports) == 1 else None
    if chosen is None:
        raise apierrors.ApiError(
            503, "ServiceUnavailable", f'no endpoints available for service "{spec}" (no port {port_ref!r})'
        )
    endpoints = store.find(_ENDPOINTS, namespace, name) or {}
    for subset in endpoints.get("subsets") or []:
        subset_ports = subset.get("ports") or []
        port = next(
            (p["port"] for p in subset_ports if p.get("name", "") == chosen.get("name", "")),
            subset_ports[0]["port"] if len(subset_ports) == 1 else None,
        )
        for address in subset.get("addresses") or []:
            if port is not None and address.get("ip"):
                return address["ip"], int(port)
    raise apierrors.ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{spec}"')


def proxy(
    store: Store,
    *,
    namespace: str,
    service: str,
    path: str,
    query_string: str,
    method: str,
    body: bytes,
    headers: Mapping[str, str],
) -> ProxyResponse:
    """Forward one request; a connection failure is kube's 503 with the dial error."""
    host, port = _target(store, namespace, service)
    target = "/" + path.lstrip("/") + (f"?{query_string}" if query_string else "")
    forwarded = {k: v for k, v in headers.items() if k.lower() in ("accept", "content-type")}
    conn = http.client.HTTPConnection(host, port, timeout=PROXY_TIMEOUT_S)
    try:
        conn.request(method, target, body=body or None, headers=forwarded)
        response = conn.getresponse()
        data = response.read()
    except OSError as exc:
        raise apierrors.ApiError(503, "ServiceUnavailable", f"error trying to reach service: {exc}") from None
    finally:
        conn.close()
    content_type = response.getheader("Content-Type") or "application/octet-stream"
    return ProxyResponse(status=response.status, content_type=content_type, body=data)


__all__ = ["PROXY_TIMEOUT_S", "ProxyResponse", "proxy"]
