"""Kubeconfig files the one-machine targets write: never over a user's own, always mode 0600.

Both the embedded target and the real control plane hand out a kubeconfig for kubectl and the suite; the same two
rules hold for both, so they live here once: a path holding a kubeconfig that k8s-ai-bench did not write (its
current context is not ours) is refused, and what is written is readable by its owner only (it holds credentials).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError

__all__ = ["refuse_foreign", "write_kubeconfig"]


def refuse_foreign(path: Path, context: str) -> None:
    """Raise :class:`ConfigError` when ``path`` exists and is not a kubeconfig whose current context is ``context``."""
    if not path.exists():
        return
    try:
        existing = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        existing = {}
    if not isinstance(existing, dict) or existing.get("current-context") != context:
        raise ConfigError(
            f"kubeconfig {path}: exists and was not written by k8s-ai-bench; refusing to "
            "overwrite it (choose another --kubeconfig path)"
        )


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    context: str,
    user: dict[str, str],
    namespace: str = "default",
    merge: bool = False,
) -> None:
    """Write a kubeconfig with one cluster, user and context all named ``context`` (mode 0600). With ``merge``, add
    them to the existing file instead; its current context stays."""
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    if merge and path.exists():
        config = yaml.safe_load(path.read_text())
    entries = {
        "clusters": {
            "name": context,
            "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
        },
        "users": {"name": context, "user": user},
        "contexts": {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}},
    }
    for section, entry in entries.items():
        config[section] = [e for e in config.get(section) or [] if e.get("name") != context] + [entry]
    config.setdefault("current-context", context)
    config.setdefault("preferences", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    os.chmod(path, 0o600)
