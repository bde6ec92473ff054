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


def _run(spec: dict[str, Any]) -> None:
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
    workdir = spec.get("working_dir")
    if workdir:
        try:
            os.chdir(workdir)
        except OSError as exc:
            raise SetupError(f"chdir to cwd ({workdir!r}) set in config.json failed: {exc.strerror.lower()}") from exc
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
