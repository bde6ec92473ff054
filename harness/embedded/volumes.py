"""Pod volumes materialised as host directories the runtime bind-mounts at each volumeMount's mountPath.

ConfigMap, Secret, downwardAPI and projected volumes are written as files (``items`` and ``defaultMode``
honoured); emptyDir is a per-pod directory; hostPath is the host path (``DirectoryOrCreate`` creates it); a PVC
resolves through its bound PersistentVolume to the provisioner's directory. A volume that cannot be set up raises
:class:`VolumeError`, and the kubelet keeps the pod in ContainerCreating with a FailedMount event, as kube does.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.embedded.podenv import ConfigError, field_ref

Lookup = Callable[[str, str, str], dict[str, Any] | None]  # (kind, namespace, name); kind also PVC/PV
# (pod, serviceAccountToken projection) -> a token for the pod's ServiceAccount, bound to the pod; raises
# VolumeError when none can be issued (the ServiceAccount does not exist yet). The kubelet's TokenRequest.
TokenSource = Callable[[dict[str, Any], dict[str, Any]], str]


class VolumeError(Exception):
    """A volume cannot be mounted (yet); the message is the FailedMount event text."""


def _write_files(target: Path, files: dict[str, bytes], mode: int) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # Readers never see a half-written file on refresh; the staging name is unique per writer, since the pod
        # worker's first write and a ConfigMap refresh can run at once (a shared name made one fail).
        fd, staged_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        staged = Path(staged_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(staged, mode)
            os.replace(staged, path)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise


def apply_fs_group(root: Path, gid: int, *, writable: bool) -> None:
    """fsGroup, as the kubelet's SetVolumeOwnership: the volume's files belong to the group, readable by it
    (writable too for emptyDir), and directories get the setgid bit so that new files inherit the group."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        os.chown(path, -1, gid)
        mode = path.stat().st_mode & 0o7777
        if path.is_dir():
            mode |= 0o2050 | (0o020 if writable else 0)
        else:
            mode |= 0o040 | (0o020 if writable else 0)
        os.chmod(path, mode)


def _object_files(obj: dict[str, Any], kind: str, items: list[dict[str, Any]] | None) -> dict[str, bytes]:
    data: dict[str, bytes] = {}
    if kind == "Secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    if not items:
        return data
    out: dict[str, bytes] = {}
    for item in items:
        if item["key"] not in data:
            raise VolumeError(f"configmap references non-existent config key: {item['key']}")
        out[item.get("path", item["key"])] = data[item["key"]]
    return out


def _source_files(
    pod: dict[str, Any], source: dict[str, Any], lookup: Lookup, namespace: str, tokens: TokenSource | None = None
) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for kind, key, name_key in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
        ref = source.get(key)
        if ref is None:
            continue
        name = ref.get(name_key) or ref.get("name", "")
        obj = lookup(kind, namespace, name)
        if obj is None:
            if ref.get("optional"):
                return files
            raise VolumeError(f'{kind.lower()} "{name}" not found')
        files.update(_object_files(obj, kind, ref.get("items")))
    downward = source.get("downwardAPI")
    if downward is not None:
        for item in downward.get("items") or []:
            try:
                if "fieldRef" in item:
                    files[item["path"]] = field_ref(pod, item["fieldRef"]["fieldPath"]).encode()
            except ConfigError as exc:
                raise VolumeError(str(exc)) from exc
            if item["fieldRef"]["fieldPath"] in ("metadata.labels", "metadata.annotations"):
                values = pod["metadata"].get(item["fieldRef"]["fieldPath"].split(".")[1]) or {}
                files[item["path"]] = "\n".join(f'{k}="{v}"' for k, v in sorted(values.items())).encode()
    if "serviceAccountToken" in source:
        projection = source["serviceAccountToken"]
        # Without a token source (a kubelet that does not pass one) the file is empty: readers find the path,
        # and an in-cluster client fails with 401 rather than with a missing file.
        token = tokens(pod, projection) if tokens is not None else ""
        files[projection.get("path", "token")] = token.encode()
    return files


def prepare_volume(
    pod: dict[str, Any], volume: dict[str, Any], pod_dir: Path, lookup: Lookup, tokens: TokenSource | None = None
) -> Path:
    """The host directory (or file) backing one pod volume, created if needed; ``tokens`` mints projected
    ServiceAccount tokens."""
    namespace = pod["metadata"].get("namespace", "default")
    name: str = volume["name"]
    target = pod_dir / "volumes" / name
    fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    if "emptyDir" in volume:
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(0o777)  # as kube's emptyDir: writable by whatever uid the containers run as
        if fs_group is not None:
            apply_fs_group(target, int(fs_group), writable=True)
        return target
    if "hostPath" in volume:
        host = Path(volume["hostPath"]["path"])
        kind = volume["hostPath"].get("type", "")
        if kind == "DirectoryOrCreate":
            host.mkdir(parents=True, exist_ok=True)
        elif kind == "FileOrCreate" and not host.exists():
            host.parent.mkdir(parents=True, exist_ok=True)
            host.touch()
        if not host.exists():
            raise VolumeError(f"hostPath type check failed: {host} does not exist")
        return host
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]["claimName"]
        pvc = lookup("PersistentVolumeClaim", namespace, claim)
        if pvc is None:
            raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
        if pvc.get("status", {}).get("phase") != "Bound":
            raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound')
        pv = lookup("PersistentVolume", "", pvc["spec"].get("volumeName", ""))
        if pv is None:
            raise VolumeError(f'persistentvolume of claim "{claim}" not found')
        path = (pv["spec"].get("hostPath") or pv["spec"].get("local") or {}).get("path")
        if not path or not Path(path).is_dir():
            raise VolumeError(f"persistentvolume {pv['metadata']['name']} has no usable local path")
        return Path(path)
    mode = 0o644
    for key in ("configMap", "secret", "downwardAPI"):
        if key in volume:
            mode = int(volume[key].get("defaultMode", mode))
            files = _source_files(pod, {key: volume[key]}, lookup, namespace)
            _write_files(target, files, mode)
            if fs_group is not None:
                apply_fs_group(target, int(fs_group), writable=False)
            return target
    if "projected" in volume:
        projected = volume["projected"]
        files = {}
        for source in projected.get("sources") or []:
            files.update(_source_files(pod, source, lookup, namespace, tokens))
        _write_files(target, files, int(projected.get("defaultMode", mode)))
        if fs_group is not None:
            apply_fs_group(target, int(fs_group), writable=False)
        return target
    kinds = sorted(k for k in volume if k != "name")
    raise VolumeError(f"volume {name}: unsupported volume type {kinds} on the embedded target")
