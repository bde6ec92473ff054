"""The cgroups of the embedded kubelet's containers: the runtime's ``aibench`` parents (v2 with memory and cpu
delegated, else v1 memory and cpu hierarchies), probed once, and one leaf per container with its memory limit
(OOM kills then read back as OOMKilled) and CFS cpu quota.

Nesting under the harness's own cgroup keeps containers inside whatever limits and accounting the harness itself
was given. Only root can write cgroups; without them :class:`CgroupParents.probe` reports ``rlimit``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["CFS_PERIOD_US", "CGROUP_ROOT", "CgroupKind", "CgroupParents", "ContainerCgroups"]

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000
CGROUP_RMDIR_RETRY_S = 2.0

CgroupKind = Literal["cgroup-v1", "cgroup-v2", "rlimit"]


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path for a v1 ``controller`` (or ``""`` for the v2 unified line)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        names = controllers.split(",")
        if (controller == "" and names == [""]) or (controller != "" and controller in names):
            return path
    return None


def _nested_base(mount: Path, controller: str) -> Path:
    """``<mount>/<our own cgroup>/aibench``: nesting under our own cgroup keeps containers inside whatever limits
    and accounting the harness itself was given; falls back to the hierarchy root under a cgroup namespace."""
    own = _own_cgroup(controller)
    if own is not None and (mount / own.lstrip("/")).is_dir():
        return mount / own.lstrip("/") / "aibench"
    return mount / "aibench"


@dataclass(slots=True, kw_only=True)
class ContainerCgroups:
    """The cgroup directories of one container and how to read OOM kills from them."""

    kind: Literal["cgroup-v1", "cgroup-v2"]
    dirs: tuple[Path, ...]
    memory_dir: Path

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def oom_killed(self) -> bool:
        name = "memory.oom_control" if self.kind == "cgroup-v1" else "memory.events"
        try:
            text = (self.memory_dir / name).read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value) > 0
        return False

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in Path(procs).read_text().split())
        return found

    def kill_all(self) -> None:
        kill_file = self.memory_dir / "cgroup.kill"
        if self.kind == "cgroup-v2" and kill_file.exists():
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
        deadline = time.monotonic() + CGROUP_RMDIR_RETRY_S
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        for directory in self.dirs:
            deadline = time.monotonic() + CGROUP_RMDIR_RETRY_S
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        logger.warning("could not remove cgroup %s: %s", directory, exc)
                        break
                    time.sleep(0.02)


class CgroupParents:
    """This runtime's parent cgroups (``kind`` says which hierarchy; ``rlimit``: none could be written)."""

    def __init__(self, kind: CgroupKind, bases: dict[str, Path]) -> None:
        self.kind: CgroupKind = kind
        self._bases = bases

    @property
    def enforces_cpu(self) -> bool:
        """A CFS quota can be set (always with v2; with v1 when the cpu hierarchy is writable)."""
        return self.kind == "cgroup-v2" or "cpu" in self._bases

    @classmethod
    def probe(cls) -> CgroupParents:
        """Find (and create) the parents this host lets us write; ``rlimit`` when none."""
        if os.geteuid() == 0 and (CGROUP_ROOT / "cgroup.controllers").exists():
            base = _try_v2_base()
            if base is not None:
                return cls("cgroup-v2", {"unified": base})
        if os.geteuid() == 0:
            mem = _try_v1_base(CGROUP_ROOT / "memory", "memory", "memory.limit_in_bytes")
            if mem is not None:
                bases = {"memory": mem}
                cpu = _try_v1_base(CGROUP_ROOT / "cpu", "cpu", "cpu.cfs_quota_us")
                if cpu is not None:
                    bases["cpu"] = cpu
                return cls("cgroup-v1", bases)
        return cls("rlimit", {})

    def create(
        self, cgroup_name: str, *, memory_limit_bytes: int | None, cpu_limit_millis: int | None
    ) -> ContainerCgroups:
        """One container's leaf cgroups with its limits; raises OSError (nothing left behind) when they cannot be
        made."""
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", cgroup_name).lstrip(".") or "container"
        bases = list(self._bases.values())
        suffix = 0
        while any((b / (f"{name}-{suffix}" if suffix else name)).exists() for b in bases):
            suffix += 1
        leaf = f"{name}-{suffix}" if suffix else name
        created: list[Path] = []
        try:
            if self.kind == "cgroup-v2":
                d = self._mkdir_leaf("unified", leaf)
                created.append(d)
                cg = ContainerCgroups(kind="cgroup-v2", dirs=(d,), memory_dir=d)
                if memory_limit_bytes is not None:
                    _write(d / "memory.max", str(memory_limit_bytes))
                    with contextlib.suppress(OSError):
                        _write(d / "memory.swap.max", "0")
                with contextlib.suppress(OSError):
                    _write(d / "memory.oom.group", "1")
                if cpu_limit_millis is not None and (d / "cpu.max").exists():
                    _write(d / "cpu.max", f"{_quota(cpu_limit_millis)} {CFS_PERIOD_US}")
                return cg
            mem = self._mkdir_leaf("memory", leaf)
            created.append(mem)
            dirs = [mem]
            if memory_limit_bytes is not None:
                _write(mem / "memory.limit_in_bytes", str(memory_limit_bytes))
                with contextlib.suppress(OSError):  # optional: only present with swap accounting
                    _write(mem / "memory.memsw.limit_in_bytes", str(memory_limit_bytes))
            if "cpu" in self._bases:
                cpu = self._mkdir_leaf("cpu", leaf)
                created.append(cpu)
                dirs.append(cpu)
                if cpu_limit_millis is not None:
                    _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
                    _write(cpu / "cpu.cfs_quota_us", str(_quota(cpu_limit_millis)))
            return ContainerCgroups(kind="cgroup-v1", dirs=tuple(dirs), memory_dir=mem)
        except OSError:
            for d in reversed(created):
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise

    def _mkdir_leaf(self, key: str, leaf: str) -> Path:
        """Create ``<base>/<leaf>``. The ``aibench`` base is shared by every runtime of this host in the same cgroup
        (other embedded clusters, other processes), and :meth:`close` of one of them removes it whenever it is
        empty at that moment: re-create it (with v2 controller delegation) and retry instead of failing the
        container with ENOENT. Once a leaf exists the base is not empty, so another close() cannot remove it."""
        base = self._bases[key]
        for attempt in range(3):
            try:
                (base / leaf).mkdir()
                return base / leaf
            except FileNotFoundError:
                if attempt == 2:
                    raise
                base.mkdir(exist_ok=True)
                if key == "unified":
                    delegated = (base.parent / "cgroup.subtree_control").read_text().split()
                    for ctl in ("memory", "cpu"):
                        if ctl in delegated:
                            _write(base / "cgroup.subtree_control", f"+{ctl}")
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Remove the (empty) parents; every container must have finished."""
        for base in self._bases.values():
            with contextlib.suppress(OSError):
                base.rmdir()


def _quota(millis: int) -> int:
    return max(1000, millis * CFS_PERIOD_US // 1000)


def _try_v1_base(mount: Path, controller: str, knob: str) -> Path | None:
    if not (mount / knob).exists():
        return None
    base = _nested_base(mount, controller)
    probe = base / f"probe-{os.getpid()}"
    try:
        base.mkdir(exist_ok=True)
        probe.mkdir(exist_ok=True)
        try:
            _write(probe / knob, (probe / knob).read_text().strip())
        finally:
            probe.rmdir()
    except OSError as exc:
        logger.info("cgroup v1 %s controller not writable at %s: %s", controller, base, exc)
        return None
    return base


def _try_v2_base() -> Path | None:
    controllers = (CGROUP_ROOT / "cgroup.controllers").read_text().split()
    if "memory" not in controllers:
        return None
    wanted = [c for c in ("memory", "cpu") if c in controllers]
    own = _own_cgroup("")
    candidates = []
    if own not in (None, "/"):
        candidates.append(CGROUP_ROOT / own.lstrip("/"))
    candidates.append(CGROUP_ROOT)
    for parent in candidates:
        # Enabling controllers for children fails with EBUSY when the parent itself has processes (the
        # "no internal processes" rule), except at the root: hence the fallback to the root.
        try:
            for ctl in wanted:
                _write(parent / "cgroup.subtree_control", f"+{ctl}")
            base = parent / "aibench"
            base.mkdir(exist_ok=True)
            for ctl in wanted:
                _write(base / "cgroup.subtree_control", f"+{ctl}")
        except OSError as exc:
            logger.debug("cgroup v2 delegation at %s failed: %s", parent, exc)
            continue
        return base
    return None
