"""Objects a user names on the command line (``--redis-service ns/name``, ``--s3-secret ns/name``), read once and
turned into what a suite needs, with one-line errors naming the option. Secret values are never put in messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.capabilities import ServiceRef
from harness.cluster.fields import annotations_of
from harness.cluster.forbidden import explain_forbidden
from harness.errors import ConfigError


def _read_error(option: str, ref: str, kind: str, exc: ApiException) -> ConfigError:
    if exc.status == 404:
        return ConfigError(f"{option} {ref}: no such {kind}")
    if exc.status == 403:
        explanation = explain_forbidden(exc) or f"RBAC: get {kind.lower()}s"
        return ConfigError(f"{option} {ref}: the harness may not read it. {explanation}")
    return ConfigError(f"{option} {ref}: cannot read it (HTTP {exc.status} {exc.reason})")


def resolve_service(
    api_client: client.ApiClient,
    ref: str,
    *,
    option: str,
    port_names: Sequence[str] = (),
    default_port: int | None = None,
) -> ServiceRef:
    """The ClusterIP and port of Service ``namespace/name``: a port named in ``port_names``, else
    ``default_port``, else the first one."""
    namespace, _, name = ref.partition("/")
    try:
        service = client.CoreV1Api(api_client).read_namespaced_service(name, namespace)
    except ApiException as exc:
        raise _read_error(option, ref, "Service", exc) from None
    spec = service.spec or client.V1ServiceSpec()
    ip = spec.cluster_ip
    if not ip or ip == "None":
        raise ConfigError(f"{option} {ref}: a headless Service has no ClusterIP; name a ClusterIP Service")
    ports = spec.ports or []
    if not ports:
        raise ConfigError(f"{option} {ref}: the Service exposes no port")
    port = next((p for p in ports if p.name in port_names), None) or next(
        (p for p in ports if p.port == default_port), ports[0]
    )
    description = annotations_of(service).get("aibench.io/description") or f"named with {option}"
    return ServiceRef(namespace=namespace, name=name, cluster_ip=ip, port=port.port, description=description)


def read_secret_keys(api_client: client.ApiClient, ref: str, keys: Sequence[str], *, option: str) -> dict[str, str]:
    """The ``keys`` of Secret ``namespace/name``, base64 as stored; errors name keys, never values."""
    namespace, _, name = ref.partition("/")
    try:
        secret = client.CoreV1Api(api_client).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        raise _read_error(option, ref, "Secret", exc) from None
    data = secret.data or {}
    missing = [key for key in keys if not data.get(key)]
    if missing:
        raise ConfigError(
            f"{option} {ref}: lacks key(s) {', '.join(missing)} (has: {', '.join(sorted(data)) or 'none'})"
        )
    return {key: _text(data[key]) for key in keys}


def _text(value: str | bytes) -> str:
    """A Secret value as the API sends it (base64 text); the client's type also allows bytes."""
    return value.decode("ascii") if isinstance(value, bytes) else value


def create_secret(
    api_client: client.ApiClient, namespace: str, name: str, data: Mapping[str, str], *, labels: Mapping[str, str]
) -> None:
    """An Opaque Secret in the test's namespace (``data`` already base64, as the API stores it)."""
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=dict(labels)), type="Opaque", data=dict(data))
    client.CoreV1Api(api_client).create_namespaced_secret(namespace, body)
