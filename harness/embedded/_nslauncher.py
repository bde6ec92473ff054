"""Tiny exec launcher for embedded-kubelet containers (run as ``python -I -S _nslauncher.py SPEC_FD ERR_FD``).

Why a separate process instead of ``preexec_fn``: the embedded target is multi-threaded (API server, controllers,
kubelet), and running Python between fork and exec in a threaded parent can deadlock on locks held by other
threads. This script runs in a fresh, single-threaded interpreter, so it can safely ``unshare(CLONE_NEWNS)``,
``setns`` and mount through libc before ``execve``-ing the container command. It imports only the standard library
and is started with ``-I -S`` so that the container's environment (``PYTHONPATH``, ``LD_*`` is not even passed) can
not change the launcher itself.

Protocol: the parent writes one spec (a dict of plain values, in :mod:`marshal` format) to SPEC_FD and closes it.
Setup errors are written the same way (``{"message": ...}``) to ERR_FD, which is close-on-exec: the parent reading
EOF with no data means ``execve`` succeeded. Both ends are the same interpreter (``sys.executable``), so the
format always matches; :mod:`marshal` is built in, whereas importing :mod:`json` (and with it ``re`` and
``enum``) added ~7 ms to every container start. Nothing is ever written to stdout/stderr, because those are the
container's log.

Missing mount points: the container shares the host's filesystem, so ``mkdir /data`` inside the namespace would
create ``/data`` on the host. Instead, when a mount target (or a parent of it) does not exist, the nearest existing
ancestor P is *mirrored*: a private tmpfs is mounted over P and every entry of the original P is bind-mounted
(recursively) or re-created (symlinks) into it; the missing directories/files are then created in that tmpfs. The
host never sees any of it. When P is ``/`` the mirror is built on a parent-provided empty staging directory and the
process ``chroot``s into it (a tmpfs stacked on ``/`` itself is unreachable by path). Nothing under ``/usr``,
``/etc`` etc. is hidden: every original entry stays visible through its bind mount.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import signal
import stat
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SetupError(Exception):
    """A failure before ``execve`` that the kubelet reports as ContainerCannotRun / StartError."""


def _libc() -> ctypes.CDLL:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return ctypes.CDLL(None, use_errno=True)


LIBC = _libc()


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err).lower()}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    rc = LIBC.mount(
        source.encode() if source is not None else None,
        target.encode(),
        fstype.encode() if fstype is not None else None,
        ctypes.c_ulong(flags),
        data.encode() if data is not None else None,
    )
    _check(rc, f"mount {source!r} on {target!r}")


def _umount_detach(target: str) -> None:
    LIBC.umount2(target.encode(), MNT_DETACH)


def _new_mount_namespace() -> None:
    _check(LIBC.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # Without this, our mounts would propagate back to the host's shared mounts.
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def _join_mount_namespace(pid: int) -> None:
    fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
    try:
        _check(LIBC.setns(fd, CLONE_NEWNS), "setns(mnt)")
    finally:
        os.close(fd)
    # setns resets root to the namespace root; the container may have chroot-ed into a mirrored root.
    os.chroot(f"/proc/{pid}/root")
    os.chdir("/")


def _join_netns(path: str) -> None:
    """Enter the pod's network namespace (before any mount work: sysfs is remounted for it afterwards)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(LIBC.setns(fd, CLONE_NEWNET), f"setns(net {path})")
    finally:
        os.close(fd)


def _pod_sysfs() -> None:
    """A sysfs of the pod's network namespace on /sys (as ``ip netns exec`` does), so /sys/class/net lists the
    pod's interfaces; the host's cgroup tree stays visible at /sys/fs/cgroup (bound back from a handle)."""
    try:
        cgroup = os.open("/sys/fs/cgroup", os.O_PATH | os.O_CLOEXEC)
    except OSError:
        cgroup = -1
    _mount("sysfs", "/sys", "sysfs", 0)
    if cgroup >= 0:
        try:
            _mount(f"/proc/self/fd/{cgroup}", "/sys/fs/cgroup", None, MS_BIND | MS_REC)
        finally:
            os.close(cgroup)


def _split_existing(target: str) -> tuple[str, list[str]]:
    """Return (nearest existing ancestor with symlinks resolved, missing components below it)."""
    parts = [p for p in target.split("/") if p]
    cur = "/"
    for i, part in enumerate(parts):
        nxt = os.path.join(cur, part)
        if not os.path.lexists(nxt):
            return cur, parts[i:]
        cur = os.path.realpath(nxt) if os.path.islink(nxt) else nxt
    return cur, []


def _replicate(src: str, dst: str) -> None:
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
        return
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(dst, 0o755)
    else:
        os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, 0o644))
    _mount(src, dst, None, MS_BIND | MS_REC)


def _create_chain(base: str, parts: list[str], leaf_is_dir: bool) -> None:
    cur = base
    for i, part in enumerate(parts):
        cur = os.path.join(cur, part)
        last = i == len(parts) - 1
        if os.path.lexists(cur):
            continue
        if last and not leaf_is_dir:
            os.close(os.open(cur, os.O_CREAT | os.O_WRONLY, 0o644))
        else:
            os.mkdir(cur, 0o755)


def _mirror(parent: str, wanted: list[tuple[list[str], bool]], staging: str | None) -> None:
    """Hide ``parent`` behind a tmpfs that mirrors it, then create the ``wanted`` paths in it (see module doc)."""
    st = os.stat(parent)
    if parent == "/":
        if staging is None:
            raise SetupError("a mount target needs a new top-level directory but no staging directory was given")
        names = os.listdir("/")
        _mount("tmpfs", staging, "tmpfs", 0, "mode=0755")
        for name in names:
            _replicate(os.path.join("/", name), os.path.join(staging, name))
        for parts, is_dir in wanted:
            _create_chain(staging, parts, is_dir)
        os.chmod(staging, stat.S_IMODE(st.st_mode))
        os.chroot(staging)
        os.chdir("/")
        # The recursive bind of the directory holding the staging dir copied the staging mount too: drop it.
        _umount_detach(staging)
        return
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = os.listdir(fd)
        _mount("tmpfs", parent, "tmpfs", 0, "mode=0755")
        for name in names:
            # /proc/self/fd/N still resolves to the original, now shadowed, directory.
            _replicate(f"/proc/self/fd/{fd}/{name}", os.path.join(parent, name))
    finally:
        os.close(fd)
    for parts, is_dir in wanted:
        _create_chain(parent, parts, is_dir)
    os.chmod(parent, stat.S_IMODE(st.st_mode))
    os.chown(parent, st.st_uid, st.st_gid)


def _keep_visible(handles: dict[str, int]) -> None:
    """Bind each host path in ``handles`` (opened before any mount) back where a volume over a parent hid it.

    The mount point is created inside the covering volume (the pod's own emptyDir, for instance); a path that is
    still visible as itself, or that cannot be re-created (a read-only volume), is left alone.
    """
    for path, fd in handles.items():
        original = os.fstat(fd)
        try:
            current = os.stat(path)
            if (current.st_dev, current.st_ino) == (original.st_dev, original.st_ino):
                continue
        except OSError:
            pass
        try:
            os.makedirs(path, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        except (OSError, SetupError):
            continue


def _apply_mounts(mounts: list[dict[str, Any]], staging: str | None, keep: list[str] | None = None) -> None:
    pending = sorted(mounts, key=lambda m: m["target"].count("/"))
    kept: dict[str, int] = {}
    for path in keep or []:
        try:
            kept[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
    # Every source is opened (O_PATH) before the first mount: a volume mounted at /tmp would otherwise hide the
    # sources of later volumes that live under the host's /tmp. Mounting from /proc/self/fd/N is what runc does.
    handles: list[int] = []
    for mnt in pending:
        try:
            handles.append(os.open(mnt["source"], os.O_PATH | os.O_CLOEXEC))
        except OSError as exc:
            raise SetupError(f"error mounting {mnt['source']!r} to rootfs at {mnt['target']!r}: {exc}") from exc
    is_dir = [stat.S_ISDIR(os.fstat(fd).st_mode) for fd in handles]
    done: set[int] = set()
    for idx, mnt in enumerate(pending):
        target = mnt["target"]
        source = mnt["source"]
        handle = f"/proc/self/fd/{handles[idx]}"
        if idx not in done:
            parent, missing = _split_existing(target)
            if missing:
                wanted: list[tuple[list[str], bool]] = []
                # Build every mount point that needs the same mirrored parent in one go.
                for j in range(idx, len(pending)):
                    other = pending[j]
                    o_parent, o_missing = _split_existing(other["target"])
                    if o_missing and o_parent == parent:
                        wanted.append((o_missing, is_dir[j]))
                        done.add(j)
                try:
                    _mirror(parent, wanted, staging)
                except OSError as exc:
                    raise SetupError(f"creating mount point {target!r}: {exc}") from exc
        try:
            _mount(handle, target, None, MS_BIND | MS_REC)
            if mnt.get("read_only"):
                _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        except SetupError as exc:
            raise SetupError(f"error mounting {source!r} to rootfs at {target!r}: {exc}") from exc
    _keep_visible(kept)


def _is_executable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK)


def _look_path(name: str, env: dict[str, str]) -> str:
    """Go's exec.LookPath, which runc uses, with the same error texts as kube shows in StartError messages."""
    if "/" in name:
        if not os.path.exists(name):
            raise SetupError(f'exec: "{name}": stat {name}: no such file or directory')
        if not _is_executable(name):
            raise SetupError(f'exec: "{name}": permission denied')
        return name
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        if _is_executable(candidate):
            return candidate
    raise SetupError(f'exec: "{name}": executable file not found in $PATH')


def _take_terminal() -> None:
    """Make the pseudo-terminal on stdin this session's controlling terminal (``kubectl exec -t``), so that ^C and
    job control reach the command; the parent started us as a session leader without one."""
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


# ---- securityContext (see securitycontext.py for what maps here and what is refused) ----------------------------
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
_KEPT_MOUNT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}
# What the container runtimes' default seccomp profile blocks for an unprivileged container (it is an allowlist;
# this denylist of its blocked calls is the emulation, documented as such).
SECCOMP_DENIED = [
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
]
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO_EPERM = 0x00050000 | 1


def _traversable(st: os.stat_result, uid: int, gids: set[int]) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid in gids:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def _reach_for_user(paths: list[str], uid: int, gids: set[int]) -> None:
    """Make ``paths`` reachable for ``uid`` when a directory above them is closed to it (the interpreter under
    /root/.pyenv, /root being 0700): in the container's mount namespace only, a tmpfs (0711) covers the closed
    directory and only the needed entry is bind-mounted back; the rest of it stays hidden from the container."""
    plan: dict[str, dict[str, int]] = {}
    for path in paths:
        cur = "/"
        for part in [p for p in path.split("/") if p]:
            nxt = os.path.join(cur, part)
            if not os.path.lexists(nxt):
                break
            if not _traversable(os.stat(cur), uid, gids):
                children = plan.setdefault(cur, {})
                if part not in children:
                    children[part] = os.open(nxt, os.O_PATH | os.O_CLOEXEC)
            cur = nxt
    for closed in sorted(plan, key=lambda d: d.count("/")):
        _mount("tmpfs", closed, "tmpfs", 0, "mode=0711")
        for name, fd in plan[closed].items():
            target = os.path.join(closed, name)
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.mkdir(target, 0o755)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
            _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)


def _unescape_mountinfo(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def _read_only_root(writable: list[str]) -> None:
    """readOnlyRootFilesystem: remount every mount of this (private) namespace read-only except the volumes (which
    keep their own readOnly), /proc, /sys and /dev, keeping each mount's nosuid/nodev/noexec/atime flags."""
    keep = [os.path.normpath(w) for w in writable] + ["/proc", "/sys", "/dev"]
    seen: set[str] = set()
    with open("/proc/self/mountinfo") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        fields = line.split(" ")
        point, options = _unescape_mountinfo(fields[4]), fields[5].split(",")
        if point in seen or "ro" in options:
            continue
        seen.add(point)
        if any(point == k or point.startswith(k.rstrip("/") + "/") for k in keep):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= _KEPT_MOUNT_FLAGS.get(option, 0)
        try:
            _mount(None, point, None, flags)
        except SetupError as exc:
            raise SetupError(f"readOnlyRootFilesystem: {exc}") from exc


def _apply_seccomp_default() -> None:
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as exc:
        raise SetupError(f"seccompProfile RuntimeDefault: loading libseccomp: {exc}") from exc
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise SetupError("seccompProfile RuntimeDefault: seccomp_init failed")
    try:
        for name in SECCOMP_DENIED:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:  # not a syscall on this architecture
                continue
            rc = lib.seccomp_rule_add(ctx, SCMP_ACT_ERRNO_EPERM, number, 0)
            if rc < 0:
                raise SetupError(f"seccompProfile RuntimeDefault: rule for {name}: {os.strerror(-rc).lower()}")
        if os.geteuid() != 0:  # without CAP_SYS_ADMIN the kernel accepts a filter only under no_new_privs
            _check(LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            raise SetupError(f"seccompProfile RuntimeDefault: seccomp_load: {os.strerror(-rc).lower()}")
    finally:
        lib.seccomp_release(ctx)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _known_capabilities(drop: list[int]) -> list[int]:
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    return [c for c in drop if c <= last]


def _drop_bounding(drop: list[int]) -> None:
    """Remove ``drop`` from the bounding set (so no setuid binary or file capability brings them back) and clear
    the ambient set; the effective set is untouched, so setuid/setgid still work afterwards."""
    setpcap = 8
    for cap in sorted(drop, key=lambda c: c == setpcap):  # CAP_SETPCAP last: dropping the others needs it
        _check(LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"prctl(PR_CAPBSET_DROP, {cap})")
    LIBC.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def _drop_effective(drop: list[int]) -> None:
    """Remove ``drop`` from the effective, permitted and inheritable sets (what a root container still holds)."""
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(LIBC.capget(ctypes.byref(header), data), "capget")
    for cap in drop:
        word, bit = divmod(cap, 32)
        mask = ~(1 << bit) & 0xFFFFFFFF
        data[word].effective &= mask
        data[word].permitted &= mask
        data[word].inheritable &= mask
    _check(LIBC.capset(ctypes.byref(header), data), "capset")


def _apply_identity(sec: dict[str, Any]) -> None:
    """runAsUser/runAsGroup/supplementalGroups/fsGroup, capabilities and no_new_privs, in runc's order: the
    bounding set first, then the ids (from root to non-root the kernel clears every capability), then the rest."""
    drop = _known_capabilities(list(sec.get("drop_capabilities") or []))
    if drop:
        _drop_bounding(drop)
    uid, gid = sec.get("uid"), sec.get("gid")
    try:
        if uid is not None or gid is not None or sec.get("groups"):
            os.setgroups([int(g) for g in sec.get("groups") or []])
        if gid is not None:
            os.setresgid(int(gid), int(gid), int(gid))
        if uid is not None:
            os.setresuid(int(uid), int(uid), int(uid))
    except OSError as exc:
        raise SetupError(f"setting runAsUser {uid} / runAsGroup {gid}: {(exc.strerror or str(exc)).lower()}") from exc
    if drop:
        _drop_effective(drop)
    if sec.get("no_new_privs"):
        _check(LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def _run(spec: dict[str, Any]) -> None:
    if spec.get("tty"):
        _take_terminal()
    for procs in spec.get("cgroup_procs", []):
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))
    if spec.get("rlimit_as") is not None:
        limit = int(spec["rlimit_as"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if spec.get("netns"):
        _join_netns(str(spec["netns"]))
    if spec.get("join_pid") is not None:
        _join_mount_namespace(int(spec["join_pid"]))
    elif spec.get("namespace"):
        _new_mount_namespace()
        if spec.get("netns"):
            _pod_sysfs()
        _apply_mounts(spec.get("mounts", []), spec.get("staging"), spec.get("keep_visible"))
    sec: dict[str, Any] = spec.get("security") or {}
    if spec.get("namespace") and spec.get("join_pid") is None:
        if spec.get("reach") and sec.get("uid") is not None:
            gids = {int(g) for g in sec.get("groups") or []} | {int(sec.get("gid") or 0)}
            _reach_for_user(list(spec["reach"]), int(sec["uid"]), gids)
        if sec.get("read_only_root"):
            _read_only_root([m["target"] for m in spec.get("mounts", [])])
    workdir = spec.get("working_dir")
    if workdir:
        try:
            os.chdir(workdir)
        except OSError as exc:
            raise SetupError(
                f"chdir to cwd ({workdir!r}) set in config.json failed: {(exc.strerror or str(exc)).lower()}"
            ) from exc
    if sec.get("seccomp_default"):
        _apply_seccomp_default()
    _apply_identity(sec)
    if spec.get("parent_pid") and (sec.get("uid") is not None or sec.get("gid") is not None):
        _die_with_parent(int(spec["parent_pid"]))  # a credential change cleared PR_SET_PDEATHSIG: set it again
    if not workdir and not os.access(".", os.X_OK):
        os.chdir("/")  # the kubelet's directory is closed to the container's user: "/" is kube's default
    argv = list(spec["argv"])
    if not argv:
        raise SetupError("no command specified")
    env = dict(spec["env"])
    path = _look_path(argv[0], env)
    try:
        os.execve(path, argv, env)
    except OSError as exc:
        raise SetupError(f'exec: "{argv[0]}": {(exc.strerror or str(exc)).lower()}') from exc


PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """The container is SIGKILLed if the embedded target's process dies (even by SIGKILL), so no pod process
    outlives its cluster; the setting survives ``execve``."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(137)


def main() -> int:
    spec_fd, err_fd = int(sys.argv[1]), int(sys.argv[2])
    if len(sys.argv) > 3:
        _die_with_parent(int(sys.argv[3]))
    os.set_inheritable(err_fd, False)
    with os.fdopen(spec_fd, "rb") as fh:
        spec = marshal.loads(fh.read())
    if len(sys.argv) > 3:
        spec["parent_pid"] = int(sys.argv[3])
    try:
        if spec.get("mode") == "probe":
            _new_mount_namespace()
            return 0
        _run(spec)
    except (SetupError, OSError) as exc:
        os.write(err_fd, marshal.dumps({"message": str(exc)}))
        return 127
    return 127  # unreachable: _run either execs or raises


if __name__ == "__main__":
    sys.exit(main())
