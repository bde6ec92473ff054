"""Base images made from Debian packages, for machines that reach a Debian mirror but no container registry.

``images build --debian-base`` builds our Dockerfiles ``FROM`` one of these instead of the upstream base their
``BASE_IMAGE`` argument names. Each stands in for exactly one upstream base, from the same Debian release:

- ``docker.io/library/debian:bookworm-slim`` -> ``debootstrap --variant=minbase bookworm``;
- ``docker.io/library/python:3.11-slim`` -> the same plus Debian's python3 (3.11) and python3-pip (the upstream image
  has CPython 3.11 built from source in /usr/local; the Python minor version is the same).

The rootfs comes from ``debootstrap`` against the Debian mirror this machine's apt already uses (read from its
sources, so no host is named here), verified with Debian's archive keyring, given the same apt sources, and imported
with ``PATH`` set (an imported rootfs has no environment; ``kube play`` then cannot find ``python3``). The tarball is
cached in ``~/.cache/k8s-ai-bench/bases`` so a wiped image store re-imports in seconds instead of debootstrapping.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.images.tools import Tool, cache_dir, run_captured

SUITE = "bookworm"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))


@dataclass(frozen=True, slots=True, kw_only=True)
class DebianBase:
    """A local stand-in for one upstream base image."""

    upstream: str
    ref: str
    packages: tuple[str, ...]


BASES: dict[str, DebianBase] = {
    base.upstream: base
    for base in (
        DebianBase(
            upstream="docker.io/library/debian:bookworm-slim",
            ref="localhost/k8s-ai-bench-base/debian:bookworm",
            packages=(),
        ),
        DebianBase(
            upstream="docker.io/library/python:3.11-slim",
            ref="localhost/k8s-ai-bench-base/python:3.11-bookworm",
            packages=("python3", "python3-pip"),
        ),
    )
}


def missing_prerequisites() -> list[str]:
    """What this machine lacks to make a base (empty when it can): the test's skip reason names exactly these."""
    return [name for name in ("debootstrap",) if shutil.which(name) is None] + (
        [] if Path("/usr/share/keyrings/debian-archive-keyring.gpg").is_file() else ["debian-archive-keyring"]
    )


def ensure_base(tool: Tool, base: DebianBase, *, timeout_s: float = 900.0) -> float:
    """Make ``base.ref`` in the tool's image store unless it is there; returns the seconds spent (0 when cached)."""
    if tool.exists(base.ref):
        return 0.0
    started = time.monotonic()
    tarball = cache_dir() / "bases" / f"{base.ref.rsplit('/', 1)[-1].replace(':', '_')}.tar"
    if not tarball.is_file():
        _make_rootfs(base, tarball, timeout_s=timeout_s)
    with tarball.open("rb") as source:
        done = tool.run(
            "import", "--change", f"ENV PATH={_PATH}", "--change", 'CMD ["/bin/sh"]', "-", base.ref,
            timeout_s=timeout_s,
            stdin=source,
        )  # fmt: skip
    if done.returncode != 0:
        raise ConfigError(f"{tool.name} import {base.ref}: {_last_line(done.stderr)}")
    return time.monotonic() - started


def _make_rootfs(base: DebianBase, tarball: Path, *, timeout_s: float) -> None:
    if missing := missing_prerequisites():
        raise ConfigError(f"--debian-base: this machine lacks {', '.join(missing)} (apt-get install them)")
    mirror = debian_mirror()
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aibench-rootfs-", dir=tarball.parent) as tmp:
        root = Path(tmp) / "rootfs"
        args = ["debootstrap", "--variant=minbase"]
        if base.packages:
            args.append("--include=" + ",".join(base.packages))
        done = run_captured([*args, SUITE, str(root), mirror], timeout_s=timeout_s)
        if done.returncode != 0:
            raise ConfigError(f"debootstrap {SUITE} for {base.ref}: {_last_line(done.stdout + done.stderr)}")
        _copy_apt_sources(root)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = tarball.with_name(tarball.name + ".part")
        packed = run_captured(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], timeout_s=timeout_s
        )
        if packed.returncode != 0:
            raise ConfigError(f"tar of the {base.ref} rootfs: {_last_line(packed.stderr)}")
        partial.replace(tarball)


def debian_mirror(sources: tuple[Path, ...] = _SOURCES) -> str:
    """The first mirror URI this machine's apt uses for :data:`SUITE` (deb822 ``.sources`` or one-line format)."""
    for entry in sources:
        files = sorted(entry.glob("*.sources")) + sorted(entry.glob("*.list")) if entry.is_dir() else [entry]
        for path in files:
            if not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for block in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.+)$", block, flags=re.MULTILINE))
                if SUITE in fields.get("Suites", "").split() and "deb" in fields.get("Types", "deb").split():
                    return str(fields["URIs"]).split()[0]
            for line in text.splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line).split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                    return parts[1]
    raise ConfigError(f"--debian-base: no apt source for Debian {SUITE} in /etc/apt/sources.list(.d) to debootstrap")


def _copy_apt_sources(root: Path) -> None:
    """The image gets this machine's Debian sources (main, updates, security), so pinned point-release versions
    (``iperf3=3.12-1+deb12u2``) resolve in it as they do on the host."""
    host = Path("/etc/apt/sources.list.d/debian.sources")
    if host.is_file():
        (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
        (root / "etc/apt/sources.list.d/debian.sources").write_text(host.read_text(encoding="utf-8"))
        (root / "etc/apt/sources.list").unlink(missing_ok=True)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
