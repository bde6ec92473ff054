"""Address allocation: the pod network's IPAM and the secondary networks' ``host-local`` / ``static`` IPAM.

Allocation is in memory, per cluster: the agent owns every address it hands out, and a restart starts with fresh
namespaces (the sweep removed the old ones), so there is nothing to recover. Released addresses are reused last
(a FIFO), as CNI's host-local does, so a just-freed address is not handed to the next pod while conntrack may still
hold entries for it.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import deque
from dataclasses import dataclass, field

from harness.podnet.ranges import BENCH_RANGE


class IpamError(ValueError):
    """An address or range that cannot be used (outside 198.18.0.0/15, exhausted, malformed)."""


def require_bench(text: str, what: str) -> ipaddress.IPv4Network:
    """Parse ``text`` (an address or CIDR) and refuse anything outside 198.18.0.0/15: the one safety rule."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise IpamError(f"{what} {text!r} is not an IP address or CIDR: {exc}") from None
    if not isinstance(network, ipaddress.IPv4Network) or not network.subnet_of(BENCH_RANGE):
        raise IpamError(
            f"{what} {text} is outside {BENCH_RANGE}: the pod network only uses RFC 2544's benchmarking range, "
            "so no packet can leave this machine"
        )
    return network


@dataclass(slots=True)
class RangePool:
    """Hands out host addresses of ``network`` between ``first`` and ``last`` (inclusive), skipping ``reserved``."""

    network: ipaddress.IPv4Network
    first: ipaddress.IPv4Address | None = None
    last: ipaddress.IPv4Address | None = None
    reserved: frozenset[ipaddress.IPv4Address] = frozenset()
    _next: int = field(init=False, default=0)
    _free: deque[ipaddress.IPv4Address] = field(init=False, default_factory=deque)
    _used: set[ipaddress.IPv4Address] = field(init=False, default_factory=set)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        lo = self.first or self.network.network_address + 1
        hi = self.last or self.network.broadcast_address - 1
        if lo not in self.network or hi not in self.network or int(lo) > int(hi):
            raise IpamError(f"range {lo}-{hi} is not inside {self.network}")
        self.first, self.last = lo, hi
        self._next = int(lo)

    def allocate(self) -> ipaddress.IPv4Address:
        with self._lock:
            assert self.last is not None
            while self._next <= int(self.last):
                candidate = ipaddress.IPv4Address(self._next)
                self._next += 1
                if candidate not in self._used and candidate not in self.reserved:
                    self._used.add(candidate)
                    return candidate
            while self._free:
                candidate = self._free.popleft()
                if candidate not in self._used:
                    self._used.add(candidate)
                    return candidate
        raise IpamError(f"address range {self.first}-{self.last} of {self.network} is exhausted")

    def claim(self, address: ipaddress.IPv4Address) -> None:
        """Take a specific address (static IPAM); refuse one already in use."""
        with self._lock:
            if address in self._used:
                raise IpamError(f"address {address} is already in use on {self.network}")
            self._used.add(address)

    def release(self, address: ipaddress.IPv4Address) -> None:
        with self._lock:
            if address in self._used:
                self._used.discard(address)
                self._free.append(address)

    @property
    def in_use(self) -> int:
        with self._lock:
            return len(self._used)
