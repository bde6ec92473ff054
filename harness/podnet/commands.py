"""Running ``ip``, ``nft`` and ``tc``, and whether this host can have a pod network at all.

Why subprocesses and not netlink from Python: pyroute2 is not in the project's dependencies, and per pod the
set-up is two ``ip -batch`` runs and one ``nft -f`` (one transaction per change), whose cost is measured in
``benchmarks/test_podnet_overhead.py``. Commands inside a pod's namespace run through ``nsenter --net=``, which
(unlike ``ip netns exec``) does not remount /sys; ``ip`` itself enters a namespace with ``-n``.

nftables scripts go through libnftables (:mod:`harness.podnet.nftlib`) when it is installed: ~1 ms instead of ~4 ms.
Measured here (Linux 6.18, 2 shared cores): an ``nft -f`` that creates a table in a pod's namespace costs ~4 ms,
one that deletes/replaces a table or flushes rules ~13-16 ms (the kernel waits an RCU grace period for removals),
so a new namespace only ever gets create-only scripts, and replacements run in parallel across namespaces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.podnet import nftlib

CAP_NET_ADMIN = 12
COMMAND_TIMEOUT_S = 20.0
NETNS_DIR = Path("/run/netns")
TOOLS = ("ip", "nft", "tc", "nsenter")
_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


class NetCommandError(RuntimeError):
    """An ``ip``/``nft``/``tc`` command failed; the message has the command's own error text."""


def _in_netns(argv: list[str], netns: str | None) -> list[str]:
    if netns is None:
        return argv
    return ["nsenter", f"--net={NETNS_DIR / netns}", *argv]


def run(argv: Sequence[str], *, netns: str | None = None, stdin: str | None = None, check: bool = True) -> str:
    """Run one command (in ``netns`` when given); raise :class:`NetCommandError` with its stderr on failure."""
    full = _in_netns(list(argv), netns)
    try:
        proc = subprocess.run(
            full, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False, env=_ENV
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetCommandError(f"{' '.join(full[:4])}: {exc}") from exc
    if check and proc.returncode != 0:
        where = f" (netns {netns})" if netns else ""
        raise NetCommandError(f"{' '.join(argv[:3])}{where}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc.stdout


def ip_batch(lines: Sequence[str], *, netns: str | None = None) -> None:
    """Several ``ip`` commands in one process (``ip -batch``), stopping at the first error."""
    if lines:  # ``ip -n`` enters the namespace itself: one exec less than nsenter
        argv = ["ip", "-n", netns, "-batch", "-"] if netns is not None else ["ip", "-batch", "-"]
        run(argv, stdin="\n".join(lines) + "\n")


def nft(text: str, *, netns: str | None = None) -> None:
    """Apply one nftables script as one transaction: all of it or nothing (libnftables when present, ~1 ms,
    else the ``nft`` command)."""
    if nftlib.available():
        try:
            nftlib.apply(text, NETNS_DIR / netns if netns is not None else None)
        except (nftlib.NftError, OSError) as exc:
            where = f" (netns {netns})" if netns else ""
            raise NetCommandError(f"nft{where}: {exc}") from None
        return
    run(["nft", "-f", "-"], netns=netns, stdin=text)


def has_cap_net_admin() -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError):
        return False
    return False


def unavailable_reason() -> str | None:
    """None when a pod network can be built here, else why not (shown in the record and in skips)."""
    if os.geteuid() != 0 and not has_cap_net_admin():
        return "not root and no CAP_NET_ADMIN"
    if os.geteuid() != 0:
        return "not root: network namespaces under /run/netns need root"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        hint = " (apt-get install nftables)" if "nft" in missing else ""
        return f"missing command(s): {', '.join(missing)}{hint}"
    try:
        run(["nft", "list", "tables"])
    except NetCommandError as exc:
        return f"nftables unusable: {exc}"
    return None
