"""A container's environment as the kubelet builds it: env, envFrom, downward API, ``$(VAR)`` expansion.

Workload scripts read their identity (``JOB_COMPLETION_INDEX``, ``POD_IP``, ``NODE_NAME``...) from here exactly as
on a real node, so one script runs unchanged on both. Missing non-optional ConfigMaps/Secrets raise
:class:`ConfigError`, which the kubelet reports as kube does: ``CreateContainerConfigError``.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.quantity import ceil_ratio, parse_quantity

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")

Lookup = Callable[[str, str, str], dict[str, Any] | None]  # (kind "ConfigMap"|"Secret", namespace, name)


class ConfigError(Exception):
    """A container cannot be configured (a missing ConfigMap key, say); the pod waits like on a real node."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known variables substituted, unknown references kept, ``$$`` -> ``$``."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(sub, text)


def field_ref(pod: dict[str, Any], path: str) -> str:
    """Downward API ``fieldRef``: the fields kube supports for env."""
    metadata, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
    match = _LABEL_REF.match(path)
    if match:
        return str((metadata.get(match.group(1)) or {}).get(match.group(2), ""))
    values: dict[str, str] = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP", ""),
        "status.podIPs": ",".join(p["ip"] for p in status.get("podIPs") or []),
        "status.hostIP": status.get("hostIP", ""),
        "status.hostIPs": ",".join(p["ip"] for p in status.get("hostIPs") or []),
    }
    if path not in values:
        raise ConfigError(f"unsupported fieldRef path {path!r}")
    return values[path]


def resource_ref(container: dict[str, Any], ref: dict[str, Any], node_allocatable: Mapping[str, str]) -> str:
    """Downward API ``resourceFieldRef``; an unset limit reads the node's allocatable, as kube does."""
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(name)
    if value is None:
        value = node_allocatable.get(name, "0") if kind == "limits" else "0"
    divisor = parse_quantity(str(ref.get("divisor") or "1"))
    if divisor == 0:
        raise ConfigError(f"resourceFieldRef {resource}: divisor must not be zero")
    amount = parse_quantity(str(value))
    positive = amount != 0 and (amount > 0) == (divisor > 0)
    return str(max(ceil_ratio(amount, divisor), 1) if positive else 0)


def _source_data(obj: dict[str, Any], kind: str) -> dict[str, str]:
    data = dict(obj.get("data") or {})
    if kind == "Secret":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
    data.update({k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("binaryData") or {}).items()})
    return data


def container_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    *,
    lookup: Lookup,
    base: Mapping[str, str],
    service_env: Mapping[str, str],
    node_allocatable: Mapping[str, str],
) -> dict[str, str]:
    """The complete environment: base (PATH...), service links, envFrom, then env in order (later wins)."""
    namespace = pod["metadata"].get("namespace", "default")
    env: dict[str, str] = dict(base)
    env["HOSTNAME"] = pod["spec"].get("hostname") or pod["metadata"]["name"]
    if pod["spec"].get("enableServiceLinks", True):
        env.update(service_env)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if not ref:
                continue
            obj = lookup(kind, namespace, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
            for name, value in _source_data(obj, kind).items():
                env[prefix + name] = value
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item:
            env[name] = expand(str(item.get("value") or ""), env)
            continue
        value_from = item.get("valueFrom") or {}
        if "fieldRef" in value_from:
            env[name] = field_ref(pod, value_from["fieldRef"].get("fieldPath", ""))
        elif "resourceFieldRef" in value_from:
            env[name] = resource_ref(container, value_from["resourceFieldRef"], node_allocatable)
        else:
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = value_from.get(key)
                if not ref:
                    continue
                obj = lookup(kind, namespace, ref.get("name", ""))
                data = _source_data(obj, kind) if obj is not None else None
                if data is None or ref.get("key") not in data:
                    if ref.get("optional"):
                        break
                    missing = (
                        f'{kind.lower()} "{ref.get("name")}" not found'
                        if data is None
                        else f"couldn't find key {ref.get('key')} in {kind} {namespace}/{ref.get('name')}"
                    )
                    raise ConfigError(missing)
                env[name] = data[ref["key"]]
                break
            else:
                env.setdefault(name, "")
    return env


def service_links(services: list[dict[str, Any]]) -> dict[str, str]:
    """Docker-link-style variables for the Services of a namespace (``FOO_SERVICE_HOST``...)."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec", {})
        ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        prefix = svc["metadata"]["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
    return env


def master_service_env(host: str, port: int) -> dict[str, str]:
    """``KUBERNETES_SERVICE_HOST``/``PORT`` and the docker-link variables of the API server, which the kubelet
    gives every container in every namespace (not only in ``default`` like other service links); ``host:port`` is
    where pods reach the API server (what ``rest.InClusterConfig`` and ``load_incluster_config`` read)."""
    url = f"tcp://{host}:{port}"
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
        "KUBERNETES_PORT": url,
        f"KUBERNETES_PORT_{port}_TCP": url,
        f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
        f"KUBERNETES_PORT_{port}_TCP_PORT": str(port),
        f"KUBERNETES_PORT_{port}_TCP_ADDR": host,
    }


def host_base_env() -> dict[str, str]:
    """What a container image would provide: PATH and locale from the host (images are not used)."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "PYTHONPATH", "LD_LIBRARY_PATH")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    # The node's Python is the harness's own environment, so workload scripts find their libraries (an image
    # would provide them on a real cluster); it goes first on PATH.
    interpreter_dir = str(Path(sys.executable).parent)
    if env["PATH"].split(":")[0] != interpreter_dir:
        env["PATH"] = f"{interpreter_dir}:{env['PATH']}"
    env["HOME"] = "/root" if os.geteuid() == 0 else os.environ.get("HOME", "/tmp")
    return env
