"""The container tool that builds and pushes images: docker, podman or buildah, whichever works here.

docker counts only when its engine answers (a docker client without an engine is common on CI machines); podman and
buildah need no daemon. For podman and buildah a private ``containers.conf`` (``CONTAINERS_CONF``) sets the
container runtime to runc when it is installed and the default ulimits to 1024 (or the hard limit when lower): on
machines without CAP_SYS_RESOURCE podman's default ulimits (above the hard limit) make every ``RUN`` step fail with
``setrlimit ... operation not permitted``, and crun refuses hybrid cgroup hierarchies (measured on this project's CI
machine class, /work/shared/research/local-target.md). A ``CONTAINERS_CONF`` the caller set is left alone.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness.errors import ConfigError

TOOLS = ("docker", "podman", "buildah")
TIMED_OUT = 124  # the exit status a command that ran past its limit reports (as coreutils' timeout does)


def run_captured(
    argv: Sequence[str], *, timeout_s: float, env: Mapping[str, str] | None = None, stdin: IO[bytes] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one command of an image build, output captured. A command that runs past ``timeout_s`` is killed and
    reported like a failed one (status :data:`TIMED_OUT`, ``timed out after N s`` as its last line), so one slow
    build is one failed image in the summary instead of a traceback that abandons the images after it."""
    try:
        return subprocess.run(
            list(argv), stdin=stdin, capture_output=True, text=True, timeout=timeout_s, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return subprocess.CompletedProcess(
            list(argv), TIMED_OUT, out, f"{err}\n{argv[0]}: timed out after {timeout_s:g} s".lstrip()
        )


def cache_dir() -> Path:
    """``~/.cache/k8s-ai-bench`` (``XDG_CACHE_HOME`` honoured): bases and tool config live outside any clone."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "k8s-ai-bench"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """A working container tool and the environment its commands need."""

    name: str
    path: str
    env: Mapping[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        return [self.path, *args]

    def run(self, *args: str, timeout_s: float, stdin: IO[bytes] | None = None) -> subprocess.CompletedProcess[str]:
        """Run one tool command, output captured (a failed build's last lines go into its error line)."""
        return run_captured(self.command(*args), timeout_s=timeout_s, env={**os.environ, **self.env}, stdin=stdin)

    def build_args(
        self,
        *,
        ref: str,
        context: Path,
        build_args: Mapping[str, str],
        platform: str = "",
        volumes: Sequence[str] = (),
    ) -> list[str]:
        verb = ["bud"] if self.name == "buildah" else ["build"]
        args = [*verb, "-t", ref, "-f", str(context / "Dockerfile")]
        for volume in volumes:  # podman and buildah only: RUN steps see these host files, the image does not keep them
            args += ["-v", volume]
        for key, value in sorted(build_args.items()):
            args += ["--build-arg", f"{key}={value}"]
        if platform:
            args += ["--platform", platform]
        if self.name != "docker":  # builds ignore containers.conf's default_ulimits
            nofile, nproc = _usable_limit(resource.RLIMIT_NOFILE), _usable_limit(resource.RLIMIT_NPROC)
            args += ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]
            # RUN steps fetch packages as this machine does: podman's default network would put them behind its
            # CNI bridge (10.88.0.0/16, a private range the project must not address) with NAT
            args += ["--network", "host"]
        return [*args, str(context)]

    def push_args(self, ref: str, digest_file: Path) -> list[str]:
        """Push ``ref``; podman and buildah write the pushed manifest's digest to ``digest_file``."""
        if self.name == "docker":
            return ["push", ref]
        return ["push", "--digestfile", str(digest_file), ref]

    def exists(self, ref: str) -> bool:
        args = ["image", "inspect", ref] if self.name != "buildah" else ["inspect", "--type", "image", ref]
        return self.run(*args, timeout_s=60).returncode == 0


def detect(preferred: str | None = None, *, search: Sequence[str] = TOOLS) -> Tool:
    """The tool to use: ``preferred`` (``--tool``) or the first of docker, podman, buildah that works. None working
    is a :class:`ConfigError` (exit 2) naming what was tried and why each was passed over."""
    names = [preferred] if preferred else list(search)
    why: list[str] = []
    for name in names:
        path = shutil.which(name)
        if path is None:
            why.append(f"{name}: not installed")
            continue
        if name == "docker":
            probe = run_captured([path, "info"], timeout_s=20)
            if probe.returncode != 0:
                last = (probe.stderr.strip().splitlines() or ["no answer"])[-1]
                why.append(f"docker: client found but no engine answers ({last.strip()[:120]})")
                continue
            return Tool(name=name, path=path)
        return Tool(name=name, path=path, env=_containers_conf_env())
    option = f"--tool {preferred}" if preferred else "images build"
    raise ConfigError(
        f"{option}: no usable container tool ({'; '.join(why)}); install podman or buildah, or start a docker engine"
    )


def _containers_conf_env() -> dict[str, str]:
    if os.environ.get("CONTAINERS_CONF"):
        return {}
    nofile = _usable_limit(resource.RLIMIT_NOFILE)
    nproc = _usable_limit(resource.RLIMIT_NPROC)
    lines = ["[containers]", f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]', "[engine]"]
    if shutil.which("runc"):
        lines.append('runtime = "runc"')
    lines += ['cgroup_manager = "cgroupfs"', 'events_logger = "file"']
    path = cache_dir() / "containers.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_name(f".containers.conf.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return {"CONTAINERS_CONF": str(path)}


def _usable_limit(which: int) -> int:
    """1024, or this process's hard limit when lower: the value measured to work on this project's CI machine
    class, where runc could not set RLIMIT_NPROC to 65536 (below the hard limit of 96367) but could set 1024."""
    hard = resource.getrlimit(which)[1]
    return 1024 if hard == resource.RLIM_INFINITY else min(1024, hard)
