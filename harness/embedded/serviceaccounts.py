"""kube's ServiceAccount admission plugin: the projected API-access volume every pod gets unless it opts out.

Apart from the rest of admission because it is one plugin with its own contract (the volume's name, sources and
mount path are what in-cluster clients read: client-go's rest.InClusterConfig looks for exactly these files).
"""

from __future__ import annotations

import random
from typing import Any

SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION_S = 3607  # kube's projected token: one hour plus the kubelet's refresh margin
_RANDOM_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # kube's utilrand alphabet


def mount_service_account_token(spec: dict[str, Any], account: dict[str, Any] | None) -> None:
    """kube's ServiceAccount admission: a projected ``kube-api-access-<5>`` volume (token, ca.crt, namespace)
    mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container, unless the pod or its
    ServiceAccount sets ``automountServiceAccountToken: false`` or a container already mounts that path."""
    automount = spec.get("automountServiceAccountToken")
    if automount is None and account is not None:
        automount = account.get("automountServiceAccountToken")
    if automount is False:
        return
    containers = [c for group in ("initContainers", "containers") for c in spec.get(group) or [] if isinstance(c, dict)]
    if any(m.get("mountPath") == SERVICE_ACCOUNT_MOUNT for c in containers for m in c.get("volumeMounts") or []):
        return
    # a name, not a secret: the cheap generator (secrets.choice costs a syscall per character)
    name = "kube-api-access-" + "".join(random.choices(_RANDOM_SUFFIX, k=5))
    spec.setdefault("volumes", []).append(
        {
            "name": name,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_S, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for container in containers:
        container.setdefault("volumeMounts", []).append(
            {"name": name, "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT}
        )
