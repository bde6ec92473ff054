"""A minimal admin REST client for bringing the control plane up (CRDs, webhooks, nodes, RBAC, tokens).

Start-up talks to kube-apiserver before any kubeconfig-based client exists and must not pay for the official
client's model deserialisation of multi-megabyte CRDs, so this speaks JSON over one TLS context with the admin's
client certificate. Objects are written with server-side apply (idempotent, field manager ``k8s-ai-bench``).
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

__all__ = ["AdminRest", "ApiError", "object_path"]

FIELD_MANAGER = "k8s-ai-bench"
TIMEOUT_S = 30.0


class ApiError(Exception):
    """An API answer other than 2xx: status and the Status message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


_CLUSTER_SCOPED = {
    "Namespace",
    "Node",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "PriorityClass",
    "StorageClass",
}


def object_path(obj: dict[str, Any]) -> str:
    """The REST path of a built-in or CRD object (plural = lower-case kind + "s", true of every kind used here)."""
    api_version: str = obj["apiVersion"]
    kind: str = obj["kind"]
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    plural = kind.lower() + ("es" if kind.endswith("s") else "s")
    if kind.endswith("Policy"):
        plural = kind.lower()[:-1] + "ies"
    namespace = obj["metadata"].get("namespace")
    ns = f"/namespaces/{namespace}" if namespace and kind not in _CLUSTER_SCOPED else ""
    return f"{prefix}{ns}/{plural}/{quote(obj['metadata']['name'])}"


@dataclass(slots=True)
class AdminRest:
    """JSON requests to ``host:port`` with one TLS context (a fresh connection per request: start-up only)."""

    host: str
    port: int
    context: ssl.SSLContext
    token: str | None = None  # a bearer token instead of the context's client certificate

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Any:
        if query:
            path = f"{path}?{urlencode(query)}"
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=TIMEOUT_S)
        try:
            headers = {"Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            if data is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        if not 200 <= response.status < 300:
            try:
                message = json.loads(raw).get("message", raw.decode(errors="replace"))
            except (ValueError, AttributeError):
                message = raw.decode(errors="replace")[:300]
            raise ApiError(response.status, str(message))
        return json.loads(raw) if raw and raw[:1] in (b"{", b"[") else raw.decode(errors="replace")

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query or None)

    def apply(self, obj: dict[str, Any]) -> Any:
        """Server-side apply ``obj`` (created or updated; conflicts forced: the control plane owns these)."""
        return self.request(
            "PATCH",
            object_path(obj),
            obj,
            content_type="application/apply-patch+yaml",
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
        )

    def create(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body)
