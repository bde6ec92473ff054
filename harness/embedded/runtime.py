"""Container-process layer of the embedded kubelet: runs one container command as a host process.

The kubelet turns a Pod's container into a :class:`ContainerLaunch` and hands it to :class:`ProcessRuntime`; this
module knows nothing about Kubernetes objects. What it can enforce depends on the host (root, mount namespaces,
cgroups), so the runtime probes once at construction and :meth:`ProcessRuntime.describe` says exactly what is
enforced, so that results never claim an isolation or limit that was not there.

Every container runs in its own session/process group, started through ``_nslauncher.py`` (a fresh single-threaded
interpreter, see its docstring for why not ``preexec_fn``), which joins the container's cgroups, builds the private
mount namespace, resolves ``argv[0]`` against the container's ``PATH`` and ``execve``-s. Setup failures come back on a
close-on-exec pipe before :meth:`ProcessRuntime.start` returns, so a missing executable is reported as a
``ContainerCannotRun`` result up front rather than as a mysterious exit code.

A launch may name the pod's network namespace (``ContainerLaunch.netns``, made by :mod:`harness.podnet`): the
launcher joins it before building the mount namespace, and exec/exec probes join it too. Without one the container
shares the host network.

Not provided: PID/user namespaces (containers see host processes), image filesystems (the command must exist on
the host), log timestamps.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from harness.embedded.cgroups import CgroupParents, ContainerCgroups

logger = logging.getLogger(__name__)

Isolation = Literal["mount-namespace", "none"]
Limits = Literal["cgroup-v1", "cgroup-v2", "rlimit", "none"]
Reason = Literal["Completed", "Error", "OOMKilled", "ContainerCannotRun"]
MountMode = Literal["bind", "direct", "symlink", "env"]

LAUNCHER = Path(__file__).with_name("_nslauncher.py")
START_ERROR_EXIT_CODE = 128  # what containerd reports for a StartError
PROBE_TIMEOUT_S = 10.0
# Mounting over these would hide what the (image-less) container needs to run at all.
PROTECTED_TARGETS = frozenset({"/", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/proc", "/sys", "/dev"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """A volumeMount resolved to a host path; ``target`` is the absolute mountPath inside the container."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSecurity:
    """Identity and restrictions the launcher applies before ``execve`` (see securitycontext.py for the mapping
    from a Pod's securityContext and what is refused). The defaults change nothing: the kubelet's own user."""

    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    no_new_privs: bool = False
    read_only_root: bool = False
    drop_capabilities: tuple[int, ...] = ()
    seccomp_default: bool = False

    @property
    def switches_user(self) -> bool:
        return self.uid is not None and self.uid != os.geteuid()

    def to_spec(self, *, joining: bool = False) -> dict[str, object]:
        """The launcher's view; a process joining a running container (exec) finds its filesystem already set."""
        return {
            "uid": self.uid,
            "gid": self.gid,
            "groups": list(self.groups),
            "no_new_privs": self.no_new_privs,
            "read_only_root": self.read_only_root and not joining,
            "drop_capabilities": list(self.drop_capabilities),
            "seccomp_default": self.seccomp_default,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerLaunch:
    """Everything needed to start one container process, already expanded by the kubelet."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    working_dir: str | None
    mounts: tuple[Mount, ...]
    hosts_file: Path | None
    log_path: Path
    memory_limit_bytes: int | None
    cpu_limit_millis: int | None
    cgroup_name: str
    security: ProcessSecurity = ProcessSecurity()
    netns: Path | None = None  # the pod's network namespace (harness.podnet); None: the host network


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerResult:
    """How a container ended, in container-runtime terms (signal N -> exit code 128+N)."""

    exit_code: int
    reason: Reason
    message: str
    signal: int | None
    finished_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecResult:
    """Outcome of a command run inside a running container (exec probes, ``kubectl exec``)."""

    exit_code: int
    output: bytes
    timed_out: bool


class ExecStartError(Exception):
    """An exec could not start in the container (not running, executable not found...): the message says why."""


class ExecStream:
    """A process started in a running container for an interactive exec, with raw file descriptors to stream.

    Without a terminal stdout and stderr are separate pipes; with one (``tty``) both are the pseudo-terminal's
    master, which also takes stdin and the window size. The process has its own session, so :meth:`kill` reaches
    whatever it started in the foreground too.
    """

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        *,
        stdin_fd: int | None,
        stdout_fd: int,
        stderr_fd: int | None,
        tty: bool,
    ) -> None:
        self.popen = popen
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.tty = tty
        self._lock = threading.Lock()
        self._stdin_closed = stdin_fd is None

    def write_stdin(self, data: bytes) -> bool:
        """Write all of ``data`` (blocking: the pipe's back-pressure reaches the client); False once stdin is gone."""
        if self._stdin_closed or self.stdin_fd is None:
            return False
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.stdin_fd, view)
                view = view[written:]
        except OSError:  # the process closed its stdin or exited (EPIPE)
            return False
        return True

    def close_stdin(self) -> None:
        """End of the client's stdin: close the pipe (with a terminal, send EOF the way a keyboard does: ^D)."""
        with self._lock:
            if self._stdin_closed or self.stdin_fd is None:
                return
            self._stdin_closed = True
            if self.tty:
                with contextlib.suppress(OSError):
                    os.write(self.stdin_fd, b"\x04")
            elif self.popen.stdin is not None:
                with contextlib.suppress(OSError):
                    self.popen.stdin.close()

    def resize(self, width: int, height: int) -> None:
        """Set the terminal size (the resize channel); no-op without a terminal."""
        if not self.tty:
            return
        import fcntl
        import termios

        with contextlib.suppress(OSError):
            fcntl.ioctl(self.stdout_fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def wait(self) -> int:
        """Exit code in container-runtime terms (killed by signal N -> 128+N)."""
        code = self.popen.wait()
        return 128 - code if code < 0 else code

    def kill(self) -> None:
        """SIGKILL the process's session group (the client went away, or the command ended and left children)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def close(self) -> None:
        """Release the descriptors (after the output was drained)."""
        self.close_stdin()
        if self.tty:
            with contextlib.suppress(OSError):
                os.close(self.stdout_fd)
            return
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


def _now() -> datetime:
    return datetime.now(UTC)


class ContainerProcess:
    """Handle on one started container. Thread-safe; the result is computed once, after cleanup.

    Cleanup on exit mirrors a PID namespace ending: whatever the container left running (its process group, its
    cgroup, and anything else in its mount namespace) is SIGKILLed, then cgroups and host-side helpers are removed.
    """

    def __init__(
        self,
        *,
        popen: subprocess.Popen[bytes] | None,
        started_at: datetime,
        mount_modes: Mapping[str, MountMode],
        cgroups: ContainerCgroups | None,
        namespace: bool,
        launch: ContainerLaunch,
        cleanup_paths: tuple[Path, ...] = (),
        result: ContainerResult | None = None,
    ) -> None:
        self._popen = popen
        self.started_at = started_at
        self.mount_modes: Mapping[str, MountMode] = dict(mount_modes)
        self._cgroups = cgroups
        self._namespace = namespace
        self._launch = launch
        self._cleanup_paths = cleanup_paths
        self._result = result
        self._lock = threading.Lock()
        self._ns_id: tuple[int, int] | None = None
        # An open handle pins the mount namespace: once its last process exits the kernel would free it and hand
        # the same inode number to the next container's namespace, and the exit sweep would then kill that one.
        self._ns_fd: int | None = None
        if popen is not None and namespace:
            with contextlib.suppress(OSError):
                self._ns_fd = os.open(f"/proc/{popen.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
                st = os.fstat(self._ns_fd)
                self._ns_id = (st.st_dev, st.st_ino)

    @property
    def host_helper_paths(self) -> tuple[Path, ...]:
        """Host-side helpers of this container (the mount-namespace staging directory...), removed on exit."""
        return self._cleanup_paths

    @property
    def pid(self) -> int | None:
        """PID of the container's main process; ``None`` when it never ran (ContainerCannotRun)."""
        return self._popen.pid if self._popen is not None else None

    def poll(self) -> ContainerResult | None:
        if self._result is not None or self._popen is None:
            return self._result
        if self._popen.poll() is None:
            return None
        return self._finish()

    def wait(self, timeout: float | None = None) -> ContainerResult | None:
        if self._result is not None or self._popen is None:
            return self._result
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self._finish()

    def terminate(self, grace_s: float) -> ContainerResult:
        """SIGTERM the container's process group, SIGKILL everything after ``grace_s``."""
        if (done := self.poll()) is not None:
            return done
        assert self._popen is not None
        self._signal_group(signal.SIGTERM)
        if (done := self.wait(grace_s)) is not None:
            return done
        self._signal_group(signal.SIGKILL)
        if self._cgroups is not None:
            self._cgroups.kill_all()
        result = self.wait(None)
        assert result is not None
        return result

    def _exec_spec(self, argv: tuple[str, ...], env: Mapping[str, str] | None) -> dict[str, object]:
        """Launcher spec for a process joining this container: its namespace, cgroups, working dir and env."""
        return {
            "argv": list(argv),
            "env": dict(self._launch.env if env is None else env),
            "working_dir": self._launch.working_dir,
            "cgroup_procs": self._cgroups.procs_files() if self._cgroups is not None else [],
            "join_pid": self.pid if self._namespace else None,
            "security": self._launch.security.to_spec(joining=True),
            "netns": str(self._launch.netns) if self._launch.netns is not None else None,
        }

    def run_exec(self, argv: tuple[str, ...], *, timeout_s: float, env: Mapping[str, str] | None = None) -> ExecResult:
        """Run ``argv`` inside the container (its mount namespace, cgroups and working dir), capturing output."""
        if self.pid is None or self.poll() is not None:
            return ExecResult(exit_code=126, output=b"container is not running", timed_out=False)
        spec = self._exec_spec(argv, env)
        proc, error = _spawn(spec, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if error is not None:
            return ExecResult(exit_code=126 if "permission" in error else 127, output=error.encode(), timed_out=False)
        assert proc is not None
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return ExecResult(exit_code=137, output=out, timed_out=True)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        code = proc.returncode
        return ExecResult(exit_code=128 - code if code < 0 else code, output=out, timed_out=False)

    def open_exec(self, argv: tuple[str, ...], *, stdin: bool, tty: bool) -> ExecStream:
        """Start ``argv`` inside the container with its streams on pipes (stdout and stderr apart) or on a
        pseudo-terminal, for an interactive ``kubectl exec``/``cp``; raises :class:`ExecStartError` when it cannot."""
        if self.pid is None or self.poll() is not None:
            raise ExecStartError("container is not running")
        spec = self._exec_spec(argv, None)
        if tty:
            master, slave = os.openpty()
            spec["tty"] = True
            try:
                proc, error = _spawn(spec, stdin=slave, stdout=slave, stderr=slave)
            finally:
                os.close(slave)
            if error is not None or proc is None:
                os.close(master)
                raise ExecStartError(error or "launcher failed")
            return ExecStream(proc, stdin_fd=master if stdin else None, stdout_fd=master, stderr_fd=None, tty=True)
        proc, error = _spawn(
            spec,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if error is not None or proc is None:
            raise ExecStartError(error or "launcher failed")
        assert proc.stdout is not None and proc.stderr is not None
        return ExecStream(
            proc,
            stdin_fd=proc.stdin.fileno() if proc.stdin is not None else None,
            stdout_fd=proc.stdout.fileno(),
            stderr_fd=proc.stderr.fileno(),
            tty=False,
        )

    def exec_runner(self, argv: tuple[str, ...], timeout_s: float) -> int:
        """Adapter for :func:`harness.embedded.probes.run_probe`: exit code, ``TimeoutError`` on timeout."""
        result = self.run_exec(argv, timeout_s=timeout_s)
        if result.timed_out:
            raise TimeoutError(f"command {list(argv)!r} timed out after {timeout_s}s")
        return result.exit_code

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def _sweep_namespace(self) -> None:
        """Kill processes left in the container's mount namespace (daemons that escaped the process group)."""
        if self._ns_id is None:
            return
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                st = os.stat(entry / "ns" / "mnt")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == self._ns_id:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)

    def _finish(self) -> ContainerResult:
        with self._lock:
            if self._result is not None:
                return self._result
            assert self._popen is not None
            code = self._popen.wait()
            finished = _now()
            # pgid cannot be reused while any member lives, so killpg after reaping the leader is safe.
            self._signal_group(signal.SIGKILL)
            self._sweep_namespace()
            if self._ns_fd is not None:
                os.close(self._ns_fd)
                self._ns_fd = None
            oom = False
            if self._cgroups is not None:
                self._cgroups.kill_all()
                oom = self._cgroups.oom_killed()
                self._cgroups.remove()
            for path in self._cleanup_paths:
                with contextlib.suppress(OSError):
                    if path.is_symlink() or path.is_file():
                        path.unlink()
                    else:
                        path.rmdir()
            sig = -code if code < 0 else None
            exit_code = 128 + sig if sig is not None else code
            if oom:
                reason: Reason = "OOMKilled"
            elif exit_code == 0:
                reason = "Completed"
            else:
                reason = "Error"
            message = f"killed by signal {sig} ({signal.Signals(sig).name})" if sig is not None else ""
            self._result = ContainerResult(
                exit_code=exit_code, reason=reason, message=message, signal=sig, finished_at=finished
            )
            logger.debug("container %s finished: %s", self._launch.cgroup_name, self._result)
            return self._result


def _spawn(
    spec: Mapping[str, object],
    *,
    stdout: int,
    stderr: int,
    stdin: int = subprocess.DEVNULL,
    python: str = sys.executable,
) -> tuple[subprocess.Popen[bytes] | None, str | None]:
    """Start the launcher with ``spec``; return (process, None) once it exec-ed, or (None, setup error)."""
    spec_r, spec_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [python, "-I", "-S", str(LAUNCHER), str(spec_r), str(err_w), str(os.getpid())],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env={},
            pass_fds=(spec_r, err_w),
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        for fd in (spec_r, spec_w, err_r, err_w):
            os.close(fd)
        return None, f"starting launcher: {exc}"
    os.close(spec_r)
    os.close(err_w)
    with contextlib.suppress(BrokenPipeError), os.fdopen(spec_w, "wb") as fh:
        fh.write(marshal.dumps(dict(spec)))
    with os.fdopen(err_r, "rb") as fh:
        error = fh.read()
    if error:
        proc.wait()
        try:
            return None, str(marshal.loads(error)["message"])
        except (ValueError, EOFError, TypeError, KeyError):
            return None, error.decode(errors="replace")
    return proc, None


def _interpreter_paths() -> list[str]:
    """Paths a container under another uid must be able to reach: the interpreter environment pods run with
    (podenv puts it first on PATH) may live under a directory closed to other users (/root/.pyenv, say)."""
    paths = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(os.path.realpath(p) for p in paths)


def _sanitize_env_name(target: str) -> str:
    return "AIBENCH_MOUNT_" + (re.sub(r"[^A-Za-z0-9]", "_", target.strip("/")).upper() or "ROOT")


class ProcessRuntime:
    """Starts containers as host processes with whatever isolation and limits this host supports.

    ``isolation``/``limits`` may be passed to *downgrade* (e.g. tests of the fallback); asking for more than the
    probe found raises ``ValueError`` so nothing ever claims enforcement that is not there.
    """

    def __init__(self, *, isolation: Isolation | None = None, limits: Limits | None = None) -> None:
        probed_iso = self._probe_isolation()
        self._cgroups = CgroupParents.probe()
        probed_limits: Limits = self._cgroups.kind
        if isolation is not None and isolation not in ("none", probed_iso):
            raise ValueError(f"isolation {isolation!r} requested but this host supports only {probed_iso!r}")
        allowed_limits = {"none", "rlimit", probed_limits}
        if limits is not None and limits not in allowed_limits:
            raise ValueError(f"limits {limits!r} requested but this host supports {sorted(allowed_limits)}")
        self.isolation: Isolation = isolation or probed_iso
        self.limits: Limits = limits or probed_limits
        logger.info("process runtime: isolation=%s limits=%s", self.isolation, self.limits)

    # ---- probing -------------------------------------------------------------------------------------------

    @staticmethod
    def _probe_isolation() -> Isolation:
        if os.geteuid() != 0:
            logger.info("not root: containers share the host mount namespace")
            return "none"
        spec_r, spec_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCHER), str(spec_r), str(err_w)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={},
                pass_fds=(spec_r, err_w),
            )
        finally:
            os.close(spec_r)
            os.close(err_w)
        with os.fdopen(spec_w, "wb") as fh:
            fh.write(marshal.dumps({"mode": "probe"}))
        with os.fdopen(err_r, "rb") as fh:
            error = fh.read()
        try:
            rc = proc.wait(PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = -1
        if rc == 0:
            return "mount-namespace"
        logger.info("mount namespaces unavailable (%s): containers share the host mount namespace", error or rc)
        return "none"

    def describe(self) -> dict[str, str]:
        """What is actually enforced, for pod annotations and reports."""
        if self.isolation == "mount-namespace":
            mounts = "bind mounts in a private per-container mount namespace; missing mount points on a private tmpfs"
        else:
            mounts = "host filesystem shared: identical paths used as-is, else a symlink if the parent is writable, "
            mounts += "else the host path in env AIBENCH_MOUNT_<TARGET>"
        memory = {
            "cgroup-v1": "cgroup v1 memory.limit_in_bytes (OOM kills reported as OOMKilled)",
            "cgroup-v2": "cgroup v2 memory.max with memory.oom.group (OOM kills reported as OOMKilled)",
            "rlimit": "RLIMIT_AS (address space, not RSS; allocations fail instead of an OOM kill, no OOMKilled)",
            "none": "not enforced",
        }[self.limits]
        if self.limits == "cgroup-v2" or (self.limits == "cgroup-v1" and self._cgroups.enforces_cpu):
            cpu = "CFS quota (period 100ms)"
        else:
            cpu = "not enforced"
        return {
            "isolation": self.isolation,
            "limits": self.limits,
            "mounts": mounts,
            "memory": memory,
            "cpu": cpu,
            "pid_namespace": "none: containers see host processes",
            "network": "per launch: the pod's network namespace when the kubelet gives one, else the host network",
            "log_timestamps": "unsupported",
        }

    # ---- starting ------------------------------------------------------------------------------------------

    def _make_cgroups(self, launch: ContainerLaunch) -> ContainerCgroups | None:
        if self.limits not in ("cgroup-v1", "cgroup-v2"):
            return None
        return self._cgroups.create(
            launch.cgroup_name, memory_limit_bytes=launch.memory_limit_bytes, cpu_limit_millis=launch.cpu_limit_millis
        )

    def _fallback_mounts(self, launch: ContainerLaunch, env: dict[str, str]) -> tuple[dict[str, MountMode], list[Path]]:
        """Without a mount namespace: use the path as-is, a symlink, or tell the container via env."""
        modes: dict[str, MountMode] = {}
        created: list[Path] = []
        for mnt in launch.mounts:
            target = Path(mnt.target)
            if target.exists() and target.resolve() == mnt.source.resolve():
                modes[mnt.target] = "direct"
            elif not target.exists() and not target.is_symlink() and os.access(target.parent, os.W_OK):
                target.symlink_to(mnt.source)
                created.append(target)
                modes[mnt.target] = "symlink"
            else:
                env[_sanitize_env_name(mnt.target)] = str(mnt.source)
                modes[mnt.target] = "env"
        return modes, created

    def start(self, launch: ContainerLaunch) -> ContainerProcess:
        """Start the container; never raises for an unrunnable container, whose result is ContainerCannotRun."""
        started = _now()
        namespace = self.isolation == "mount-namespace"
        env = dict(launch.env)

        def cannot_run(message: str, modes: Mapping[str, MountMode] | None = None) -> ContainerProcess:
            logger.info("container %s cannot run: %s", launch.cgroup_name, message)
            result = ContainerResult(
                exit_code=START_ERROR_EXIT_CODE,
                reason="ContainerCannotRun",
                message=message,
                signal=None,
                finished_at=_now(),
            )
            return ContainerProcess(
                popen=None,
                started_at=started,
                mount_modes=modes or {},
                cgroups=None,
                namespace=False,
                launch=launch,
                result=result,
            )

        for mnt in launch.mounts:
            normalized = os.path.normpath(mnt.target) if mnt.target.startswith("/") else ""
            if not normalized:
                return cannot_run(f"mount target {mnt.target!r} is not an absolute path")
            if normalized in PROTECTED_TARGETS or normalized.startswith(("/proc/", "/sys/")):
                return cannot_run(f"refusing to mount over {normalized!r}: the container runs from the host root")
            if not mnt.source.exists():
                return cannot_run(f"mount source {str(mnt.source)!r} for {mnt.target!r} does not exist")

        cleanup: list[Path] = []
        spec: dict[str, object] = {
            "argv": list(launch.argv),
            "working_dir": launch.working_dir,
            "namespace": namespace,
            "netns": str(launch.netns) if launch.netns is not None else None,
        }
        if namespace:
            mounts = [{"source": str(m.source), "target": m.target, "read_only": m.read_only} for m in launch.mounts]
            if launch.hosts_file is not None:
                mounts.append({"source": str(launch.hosts_file), "target": "/etc/hosts", "read_only": False})
            spec["mounts"] = mounts
            # The interpreter environment pods run with (podenv puts it first on PATH) must stay visible even when
            # a volume covers its parent, e.g. an emptyDir at /tmp while the harness was cloned under /tmp.
            spec["keep_visible"] = sorted({sys.prefix, str(Path(sys.executable).parent)})
            staging = Path(tempfile.mkdtemp(prefix="aibench-ns-"))
            cleanup.append(staging)
            spec["staging"] = str(staging)
            modes: dict[str, MountMode] = {m.target: "bind" for m in launch.mounts}
        else:
            modes, created = self._fallback_mounts(launch, env)
            cleanup.extend(created)
            if launch.hosts_file is not None:
                env["AIBENCH_HOSTS_FILE"] = str(launch.hosts_file)
        spec["env"] = env
        spec["security"] = launch.security.to_spec()
        if launch.security.switches_user and namespace:
            spec["reach"] = _interpreter_paths()
        if self.limits == "rlimit" and launch.memory_limit_bytes is not None:
            spec["rlimit_as"] = launch.memory_limit_bytes
        try:
            cgroups = self._make_cgroups(launch)
        except OSError as exc:
            self._remove(cleanup)
            return cannot_run(f"creating cgroup for {launch.cgroup_name!r}: {exc}", modes)
        spec["cgroup_procs"] = cgroups.procs_files() if cgroups is not None else []

        try:
            launch.log_path.parent.mkdir(parents=True, exist_ok=True)
            log_fd = os.open(launch.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            if cgroups is not None:
                cgroups.remove()
            self._remove(cleanup)
            return cannot_run(f"opening log file {str(launch.log_path)!r}: {exc}", modes)
        try:
            proc, error = _spawn(spec, stdout=log_fd, stderr=log_fd)
        finally:
            os.close(log_fd)
        if error is not None or proc is None:
            if cgroups is not None:
                cgroups.kill_all()
                cgroups.remove()
            self._remove(cleanup)
            return cannot_run(error or "launcher failed", modes)
        logger.debug("container %s started as pid %d", launch.cgroup_name, proc.pid)
        return ContainerProcess(
            popen=proc,
            started_at=started,
            mount_modes=modes,
            cgroups=cgroups,
            namespace=namespace,
            launch=launch,
            cleanup_paths=tuple(cleanup),
        )

    @staticmethod
    def _remove(paths: list[Path]) -> None:
        for path in paths:
            with contextlib.suppress(OSError):
                if path.is_symlink() or path.is_file():
                    path.unlink()
                else:
                    path.rmdir()

    def close(self) -> None:
        """Remove the (empty) per-runtime ``aibench`` cgroup parents; containers must have finished."""
        self._cgroups.close()


__all__ = [
    "ContainerLaunch",
    "ContainerProcess",
    "ContainerResult",
    "ExecResult",
    "ExecStartError",
    "ExecStream",
    "Mount",
    "MountMode",
    "ProcessRuntime",
    "ProcessSecurity",
]
