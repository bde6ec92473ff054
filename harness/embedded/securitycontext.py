"""A container's securityContext as the process runtime applies it: honoured, or refused naming the field.

Pods on the embedded target are host processes started by the kubelet, which runs as root: without this a pod asking
for ``runAsUser: 65534`` would run as root and read /etc/shadow. The launcher can honour, before ``execve``:
``runAsUser``/``runAsGroup`` (container over pod), ``supplementalGroups`` and ``fsGroup`` (setgroups/setgid/setuid),
``runAsNonRoot`` (checked here, refused like kube with CreateContainerConfigError), ``allowPrivilegeEscalation:
false`` (PR_SET_NO_NEW_PRIVS), ``capabilities.drop`` (bounding, ambient, effective and permitted sets; a root
container without ``capabilities`` keeps root's full set, where containerd would start from its default list),
``capabilities.add`` for a root container (root has them unless dropped), ``readOnlyRootFilesystem`` (every mount
but the volumes, /proc, /sys and /dev remounted read-only in the container's own mount namespace) and
``seccompProfile: RuntimeDefault`` (emulated: libseccomp denies the syscalls that the container runtimes' default
profile blocks - module loading, kexec, mount, unshare/setns, bpf, perf_event_open... - instead of its allowlist).

Refused with CreateContainerConfigError and an event naming the field (never silently ignored): a user switch when
the kubelet is not root, ``capabilities.add`` for a non-root user, ``readOnlyRootFilesystem`` without a mount
namespace, ``seccompProfile`` Localhost or RuntimeDefault without libseccomp, ``seLinuxOptions``, AppArmor profiles
other than Unconfined, ``procMount: Unmasked`` and pod ``sysctls`` (they would change the host's).
``windowsOptions`` are ignored, as on every Linux node.
"""

from __future__ import annotations

import ctypes.util
import os
import pwd
from typing import Any

from harness.embedded.podenv import ConfigError
from harness.embedded.runtime import ProcessSecurity

# Linux capability numbers (include/uapi/linux/capability.h); kube names them without the CAP_ prefix.
CAPABILITIES = {
    name: number
    for number, name in enumerate(
        [
            "CHOWN",
            "DAC_OVERRIDE",
            "DAC_READ_SEARCH",
            "FOWNER",
            "FSETID",
            "KILL",
            "SETGID",
            "SETUID",
            "SETPCAP",
            "LINUX_IMMUTABLE",
            "NET_BIND_SERVICE",
            "NET_BROADCAST",
            "NET_ADMIN",
            "NET_RAW",
            "IPC_LOCK",
            "IPC_OWNER",
            "SYS_MODULE",
            "SYS_RAWIO",
            "SYS_CHROOT",
            "SYS_PTRACE",
            "SYS_PACCT",
            "SYS_ADMIN",
            "SYS_BOOT",
            "SYS_NICE",
            "SYS_RESOURCE",
            "SYS_TIME",
            "SYS_TTY_CONFIG",
            "MKNOD",
            "LEASE",
            "AUDIT_WRITE",
            "AUDIT_CONTROL",
            "SETFCAP",
            "MAC_OVERRIDE",
            "MAC_ADMIN",
            "SYSLOG",
            "WAKE_ALARM",
            "BLOCK_SUSPEND",
            "AUDIT_READ",
            "PERFMON",
            "BPF",
            "CHECKPOINT_RESTORE",
        ]
    )
}


def _seccomp_available() -> bool:
    return ctypes.util.find_library("seccomp") is not None


def _capability(name: str, field: str) -> int:
    key = name.upper().removeprefix("CAP_")
    if key not in CAPABILITIES:
        raise ConfigError(f"{field}: unknown capability {name!r}")
    return CAPABILITIES[key]


def _image_gid(uid: int) -> int:
    """The primary group the "image" (this host's /etc/passwd) gives the uid; 0 when the uid has no entry, as
    containerd does for a uid missing from the image's passwd."""
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return 0


def resolve(
    pod: dict[str, Any], container: dict[str, Any], *, mount_namespace: bool, root: bool | None = None
) -> ProcessSecurity:
    """Merge pod and container securityContext (the container's fields win) into what the launcher applies;
    :class:`ConfigError` (CreateContainerConfigError) names whatever is refused."""
    is_root = os.geteuid() == 0 if root is None else root
    pod_sc: dict[str, Any] = pod["spec"].get("securityContext") or {}
    sc: dict[str, Any] = container.get("securityContext") or {}
    name = container.get("name", "")
    pod_ref = f'(pod: "{pod["metadata"].get("name", "")}_{pod["metadata"].get("namespace", "")}'
    pod_ref += f'({pod["metadata"].get("uid", "")})", container: {name})'
    prefix = f"spec.containers[{name}].securityContext"

    def merged(key: str) -> Any:
        return sc[key] if sc.get(key) is not None else pod_sc.get(key)

    for field, value in (
        (f"{prefix}.seLinuxOptions", sc.get("seLinuxOptions")),
        ("spec.securityContext.seLinuxOptions", pod_sc.get("seLinuxOptions")),
    ):
        if value:
            raise ConfigError(f"{field} is not supported: the embedded target has no SELinux labelling")
    if pod_sc.get("sysctls"):
        raise ConfigError("spec.securityContext.sysctls is not supported: pods share this host's kernel settings")
    if (sc.get("procMount") or "Default") != "Default":
        raise ConfigError(f"{prefix}.procMount {sc['procMount']!r} is not supported: pods see the host's /proc")
    apparmor = merged("appArmorProfile") or {}
    if apparmor and apparmor.get("type") != "Unconfined":
        raise ConfigError(f"securityContext.appArmorProfile {apparmor.get('type')!r} is not supported: no AppArmor")
    seccomp = (merged("seccompProfile") or {}).get("type", "")
    if seccomp == "Localhost":
        raise ConfigError("securityContext.seccompProfile Localhost is not supported: only RuntimeDefault is applied")
    if seccomp == "RuntimeDefault" and not _seccomp_available():
        raise ConfigError("securityContext.seccompProfile RuntimeDefault cannot be applied: libseccomp is missing")

    uid = merged("runAsUser")
    gid = merged("runAsGroup")
    effective_uid = int(uid) if uid is not None else os.geteuid()
    if merged("runAsNonRoot"):
        if uid is None and effective_uid == 0:
            raise ConfigError(f"container has runAsNonRoot and image will run as root {pod_ref}")
        if effective_uid == 0:
            raise ConfigError(f"container's runAsUser breaks non-root policy {pod_ref}")
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))
    switching = (uid is not None and int(uid) != os.geteuid()) or (gid is not None and int(gid) != os.getegid())
    if (switching or groups) and not is_root:
        raise ConfigError(
            "securityContext.runAsUser/runAsGroup/supplementalGroups/fsGroup cannot be applied: "
            "the embedded target's kubelet does not run as root"
        )
    if sc.get("readOnlyRootFilesystem") and not mount_namespace:
        raise ConfigError(
            f"{prefix}.readOnlyRootFilesystem cannot be applied: the container has no mount namespace of its own"
        )
    caps = sc.get("capabilities") or {}
    privileged = bool(sc.get("privileged"))
    drop: set[int] = set()
    for cap in caps.get("drop") or []:
        if str(cap).upper() == "ALL":
            drop = set(CAPABILITIES.values())
            break
        drop.add(_capability(str(cap), f"{prefix}.capabilities.drop"))
    added = {_capability(str(cap), f"{prefix}.capabilities.add") for cap in caps.get("add") or []}
    if added and effective_uid != 0 and not privileged:
        raise ConfigError(
            f"{prefix}.capabilities.add is not supported for a non-root user: the launcher keeps no capabilities "
            "across setuid"
        )
    drop -= added
    if privileged:
        drop = set()
    extra = tuple(sorted(set(groups) | ({int(gid)} if gid is not None else set())))
    return ProcessSecurity(
        uid=int(uid) if uid is not None else None,
        gid=int(gid) if gid is not None else (_image_gid(int(uid)) if uid is not None else None),
        groups=extra,
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        read_only_root=bool(sc.get("readOnlyRootFilesystem")),
        drop_capabilities=tuple(sorted(drop)),
        seccomp_default=seccomp == "RuntimeDefault" and not privileged,
    )
