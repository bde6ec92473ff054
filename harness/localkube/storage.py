"""PersistentVolumes on the real control plane: Rancher's local-path provisioner, as kind and k3s ship it.

The provisioner's own release manifest (``deploy/local-path-storage.yaml`` of the pinned module, copied by the
build) is applied as it is -- namespace, ServiceAccount, RBAC, the ``local-path`` StorageClass
(``WaitForFirstConsumer``, made the default class here) and the ConfigMap holding its ``config.json``, ``setup`` and
``teardown`` scripts and ``helperPod.yaml`` -- except two things: its Deployment is replaced by the program run as
a process (with the operators' kubeconfig), and ``config.json`` points the node paths at this start's state
directory instead of ``/opt/local-path-provisioner``. The provisioner then does what it does on any cluster: for a
claim whose pod the scheduler placed on this machine's node it runs a helper pod there (the node agent runs its
``sh /script/setup`` as a process) and creates a ``hostPath`` PersistentVolume with node affinity to that node; a
deleted claim's helper pod runs ``teardown``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.localkube.rest import AdminRest

__all__ = ["HELPER_IMAGE", "MANIFEST", "NAMESPACE", "STORAGE_CLASS", "local_path_objects", "provisioner_argv"]

MANIFEST = "local-path-storage.yaml"
NAMESPACE = "local-path-storage"
STORAGE_CLASS = "local-path"
CONFIG_MAP = "local-path-config"
SERVICE_ACCOUNT = "local-path-provisioner-service-account"
HELPER_IMAGE = "docker.io/library/busybox:1.36.1"  # what the helper pod names; the node agent runs its command


def local_path_objects(manifest: Path, volumes_dir: Path) -> list[dict[str, Any]]:
    """The manifest's objects to apply: everything but the Deployment, the node paths at ``volumes_dir``."""
    try:
        documents = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"real control plane: {manifest}: {exc}; run `bash deploy/local-kube/build.sh`") from None
    objects: list[dict[str, Any]] = []
    for doc in documents:
        kind = doc.get("kind")
        if kind == "Deployment":
            continue  # the same program runs as a process (provisioner_argv)
        if kind == "StorageClass" and doc["metadata"]["name"] == STORAGE_CLASS:
            annotations = doc["metadata"].setdefault("annotations", {})
            annotations["storageclass.kubernetes.io/is-default-class"] = "true"
        if kind == "ConfigMap" and doc["metadata"]["name"] == CONFIG_MAP:
            config = json.loads(doc["data"]["config.json"])
            for entry in config.get("nodePathMap") or []:
                entry["paths"] = [str(volumes_dir)]
            doc["data"]["config.json"] = json.dumps(config, indent=2)
        objects.append(doc)
    if not any(o.get("kind") == "StorageClass" for o in objects):
        raise ConfigError(f"real control plane: {manifest} has no StorageClass; run `bash deploy/local-kube/build.sh`")
    return objects


def apply_local_path(rest: AdminRest, manifest: Path, volumes_dir: Path) -> None:
    """Apply the provisioner's objects (server-side apply, in manifest order: the namespace first)."""
    volumes_dir.mkdir(parents=True, exist_ok=True)
    for obj in local_path_objects(manifest, volumes_dir):
        rest.apply(obj)


def provisioner_argv(program: Path, kubeconfig: Path) -> list[str]:
    """The Deployment's command, with the kubeconfig instead of the in-cluster ServiceAccount."""
    return [
        str(program),
        "start",
        f"--namespace={NAMESPACE}",
        f"--configmap-name={CONFIG_MAP}",
        f"--service-account-name={SERVICE_ACCOUNT}",
        f"--helper-image={HELPER_IMAGE}",
        f"--kubeconfig={kubeconfig}",
    ]
