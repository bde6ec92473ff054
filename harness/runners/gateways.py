"""The Gateway an HTTPRoute under test attaches to: an existing, programmed Gateway API Gateway with an address.

Why discover rather than create one: a Gateway is platform infrastructure (a GatewayClass, a load balancer, often a
cloud resource); the routing tests check routes on the platform's own Gateway, like an inference team would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.forbidden import access_denied

GROUP, VERSION = "gateway.networking.k8s.io", "v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayRef:
    namespace: str
    name: str
    address: str
    port: int

    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


def programmed_gateway(api_client: client.ApiClient) -> tuple[GatewayRef | None, str]:
    """The first Gateway that is Programmed, has an address and an HTTP listener allowing routes from all
    namespaces; else None and why (for the skip message)."""
    custom = client.CustomObjectsApi(api_client)
    try:
        listed = cast("dict[str, Any]", custom.list_cluster_custom_object(GROUP, VERSION, "gateways"))
        items = listed.get("items", [])
    except ApiException as exc:
        if denied := access_denied(exc, "listing Gateways"):
            raise denied from None  # a refusal is an RBAC defect, not a missing Gateway: no skip
        return None, f"cannot list Gateways ({exc.status} {exc.reason})"
    if not items:
        return None, "no Gateway exists (the routing tests attach an HTTPRoute to the platform's Gateway)"
    reasons = []
    for gw in items:
        meta, status = gw.get("metadata", {}), gw.get("status", {})
        name = f"{meta.get('namespace')}/{meta.get('name')}"
        programmed = any(
            c.get("type") == "Programmed" and c.get("status") == "True" for c in status.get("conditions", [])
        )
        addresses = [a.get("value") for a in status.get("addresses", []) if a.get("value")]
        listeners = [
            lst
            for lst in gw.get("spec", {}).get("listeners", [])
            if lst.get("protocol") == "HTTP"
            and ((lst.get("allowedRoutes") or {}).get("namespaces") or {}).get("from") == "All"
        ]
        if programmed and addresses and listeners:
            ref = GatewayRef(
                namespace=meta["namespace"], name=meta["name"], address=addresses[0], port=listeners[0]["port"]
            )
            return ref, ""
        reasons.append(
            f"{name}: programmed={programmed}, addresses={len(addresses)}, HTTP listeners open to all namespaces="
            f"{len(listeners)}"
        )
    return None, "no usable Gateway (" + "; ".join(reasons) + ")"
