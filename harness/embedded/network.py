"""Loopback networking for the embedded target: pod and Service addresses, Service forwarding, name resolution.

Every address lives in 127.0.0.0/8, which Linux routes to ``lo`` without any alias set-up, so pods can bind their
own IP and no packet can leave the machine (a project safety rule). Ranges:

- 127.1.0.0/16   emulated nodes (see clusterspec)
- 127.80.0.0/12  pod IPs (127.80.0.1 ... 127.95.255.254); each cluster takes a random /18 of it
- 127.96.0.0/12  Service ClusterIPs; each cluster takes a random /18 of it

A ClusterIP is made real by a userspace TCP forwarder listening on ``clusterIP:port`` that relays each connection
to a ready endpoint (round robin), which is what kube-proxy's userspace mode did.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import logging
import random
import selectors
import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

POD_NETWORK = ipaddress.IPv4Network("127.80.0.0/12")
SERVICE_NETWORK = ipaddress.IPv4Network("127.96.0.0/12")
NODE_PORT_RANGE = range(30000, 32768)
CLUSTER_DOMAIN = "cluster.local"


CLUSTER_SUBNET_PREFIX = 18  # 16,382 addresses: enough for the 10,000-pod scale benchmark


def pick_subnet(network: ipaddress.IPv4Network, rng: random.Random | None = None) -> ipaddress.IPv4Network:
    """A random /18 of ``network`` for one cluster, so embedded clusters running side by side on one machine
    (a test session and a ``cluster up``) rarely hand out the same pod or Service addresses (1 in 64)."""
    subnets = list(network.subnets(new_prefix=CLUSTER_SUBNET_PREFIX))
    return (rng or random.SystemRandom()).choice(subnets)


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1 -- the only places the embedded target may send packets."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@dataclass(slots=True)
class AddressPool:
    """Hands out addresses of one network; released ones are reused (a real IPAM does the same)."""

    network: ipaddress.IPv4Network
    _next: Iterable[ipaddress.IPv4Address] = field(init=False)
    _free: list[str] = field(default_factory=list)
    _used: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._next = iter(a for a in self.network.hosts() if a.packed[-1] not in (0, 255))

    def allocate(self) -> str:
        with self._lock:
            while self._free:
                address = self._free.pop()
                if address not in self._used:
                    self._used.add(address)
                    return address
            for candidate in self._next:
                address = str(candidate)
                if address not in self._used:  # skip addresses reserved explicitly (the kubernetes Service)
                    self._used.add(address)
                    return address
            raise RuntimeError(f"address pool {self.network} is exhausted")

    def reserve(self, address: str) -> None:
        with self._lock:
            self._used.add(address)

    def release(self, address: str) -> None:
        with self._lock:
            if address in self._used:
                self._used.discard(address)
                self._free.append(address)


@dataclass(slots=True)
class PortPool:
    """NodePort allocation (30000-32767)."""

    _ports: Iterable[int] = field(default_factory=lambda: iter(NODE_PORT_RANGE))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allocate(self) -> int:
        with self._lock:
            return next(self._ports)  # type: ignore[call-overload,no-any-return]


# ----------------------------------------------------------------------------- name resolution
def hosts_entries(pod: dict[str, Any], services: Iterable[dict[str, Any]], endpoints: Iterable[dict[str, Any]]) -> str:
    """The /etc/hosts a pod sees: itself, every Service (short name in its own namespace), headless pod names.

    A hosts file has no search path, so the short forms are written out: ``svc`` (own namespace only), ``svc.ns``,
    ``svc.ns.svc`` and ``svc.ns.svc.cluster.local``; headless Services add ``host.svc...`` per ready address.
    """
    namespace = pod["metadata"].get("namespace", "default")
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    pod_ip = pod.get("status", {}).get("podIP")
    hostname = pod["spec"].get("hostname") or pod["metadata"]["name"]
    subdomain = pod["spec"].get("subdomain")
    if pod_ip:
        names = [hostname]
        if subdomain:
            names = [f"{hostname}.{subdomain}.{namespace}.svc.{CLUSTER_DOMAIN}", *names]
        lines.append(f"{pod_ip}\t{' '.join(names)}")
    for svc in services:
        svc_ns = svc["metadata"].get("namespace", "default")
        name = svc["metadata"]["name"]
        cluster_ip = svc.get("spec", {}).get("clusterIP")
        names = _service_names(name, svc_ns, own=svc_ns == namespace)
        if cluster_ip and cluster_ip != "None":
            lines.append(f"{cluster_ip}\t{' '.join(names)}")
    for ep in endpoints:
        ep_ns = ep["metadata"].get("namespace", "default")
        svc_name = ep["metadata"]["name"]
        for subset in ep.get("subsets") or []:
            for address in subset.get("addresses") or []:
                ip = address.get("ip")
                host = address.get("hostname")
                if not ip:
                    continue
                if host:
                    names = [f"{host}.{n}" for n in _service_names(svc_name, ep_ns, own=ep_ns == namespace)]
                    lines.append(f"{ip}\t{' '.join(names)}")
                else:
                    # headless without hostnames: the Service name resolves to each pod (first one wins in hosts)
                    lines.append(f"{ip}\t{' '.join(_service_names(svc_name, ep_ns, own=ep_ns == namespace))}")
    return "\n".join(lines) + "\n"


def _service_names(name: str, namespace: str, *, own: bool) -> list[str]:
    names = [f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}", f"{name}.{namespace}.svc", f"{name}.{namespace}"]
    return [*names, name] if own else names


# ----------------------------------------------------------------------------- Service forwarding
@dataclass(frozen=True, slots=True)
class Backend:
    ip: str
    port: int


class _Listener:
    """One ``clusterIP:port`` listener relaying connections to backends round robin."""

    def __init__(self, address: str, port: int) -> None:
        self.address, self.port = address, port
        self.backends: Sequence[Backend] = ()
        self._rr = itertools.count()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(128)
        self.sock.setblocking(False)

    def pick(self) -> Backend | None:
        backends = self.backends
        if not backends:
            return None
        return backends[next(self._rr) % len(backends)]


class _Pipe:
    """One direction of a relayed connection: bytes read from ``src`` wait in ``buffer`` until ``dst`` takes them."""

    __slots__ = ("buffer", "dst", "eof", "shut", "src")

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src, self.dst = src, dst
        self.buffer = bytearray()
        self.eof = False  # src sent FIN
        self.shut = False  # FIN passed on to dst


class _Relay:
    """Both directions of one client <-> backend connection, driven by the proxy's selector loop."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.pipes = (_Pipe(client, upstream), _Pipe(upstream, client))
        self.connected = False

    @property
    def done(self) -> bool:
        return all(p.eof and not p.buffer for p in self.pipes)

    def interest(self, sock: socket.socket) -> int:
        """What to wait for on ``sock``: read while its outgoing buffer is drained, write while data waits for it."""
        events = 0
        if not self.connected:
            return selectors.EVENT_WRITE if sock is self.upstream else 0
        for pipe in self.pipes:
            if pipe.src is sock and not pipe.eof and len(pipe.buffer) < RELAY_BUFFER:
                events |= selectors.EVENT_READ
            if pipe.dst is sock and pipe.buffer:
                events |= selectors.EVENT_WRITE
        return events


RELAY_BUFFER = 256 * 1024


class ServiceProxy:
    """Userspace kube-proxy: one thread and one selector for every listener and every relayed connection.

    A thread pair per connection (the first version) cost ~3x throughput and ~6x p99 latency at 50 concurrent
    connections on 2 cores (measured with redis-benchmark through a ClusterIP); a single non-blocking loop keeps the
    proxy's share of the latency to one loop turn.
    """

    def __init__(self) -> None:
        self._listeners: dict[tuple[str, int], _Listener] = {}
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._relays: dict[socket.socket, _Relay] = {}
        self._interest: dict[socket.socket, int] = {}  # what each relayed socket is registered for
        # listener changes are handed to the proxy thread, which alone touches the selector
        self._pending_register: list[_Listener] = []
        self._pending_close: list[_Listener] = []
        self._thread = threading.Thread(target=self._loop, name="aibench-service-proxy", daemon=True)
        self._thread.start()

    def sync(self, address: str, port: int, backends: Sequence[Backend]) -> None:
        """Make ``address:port`` forward to ``backends`` (an empty list refuses connections, like no endpoints)."""
        if not is_loopback(address):
            raise ValueError(f"refusing to listen on non-loopback address {address}")
        for backend in backends:
            if not is_loopback(backend.ip):
                raise ValueError(f"refusing to forward to non-loopback address {backend.ip}")
        with self._lock:
            listener = self._listeners.get((address, port))
            if listener is None:
                try:
                    listener = _Listener(address, port)
                except OSError as exc:
                    log.warning("cannot listen on %s:%d for a Service: %s", address, port, exc)
                    return
                self._listeners[(address, port)] = listener
                self._pending_register.append(listener)
                self._wake_w.send(b"x")
            listener.backends = tuple(backends)

    def remove(self, address: str, port: int | None = None) -> None:
        with self._lock:
            for key in [k for k in self._listeners if k[0] == address and (port is None or k[1] == port)]:
                self._pending_close.append(self._listeners.pop(key))
            self._wake_w.send(b"x")

    def stop(self) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        with self._lock:
            for listener in self._listeners.values():
                listener.sock.close()
            self._listeners.clear()
        for sock in list(self._relays):
            sock.close()
        self._relays.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # ------------------------------------------------------------------ the loop (proxy thread only)
    def _apply_pending(self) -> None:
        with self._lock:
            register, self._pending_register = self._pending_register, []
            close, self._pending_close = self._pending_close, []
        for listener in register:
            self._selector.register(listener.sock, selectors.EVENT_READ, listener)
        for listener in close:
            try:
                self._selector.unregister(listener.sock)
            except (KeyError, ValueError):
                pass
            listener.sock.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, mask in self._selector.select(timeout=1.0):
                if key.data is None:
                    try:
                        self._wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                    self._apply_pending()
                elif isinstance(key.data, _Listener):
                    self._accept(key.data)
                else:
                    self._service(key.fileobj, key.data, mask)  # type: ignore[arg-type]

    def _accept(self, listener: _Listener) -> None:
        try:
            client, _ = listener.sock.accept()
        except (BlockingIOError, OSError):
            return
        backend = listener.pick()
        if backend is None:
            client.close()  # no ready endpoints: refuse, as kube-proxy's REJECT rule does
            return
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        error = upstream.connect_ex((backend.ip, backend.port))
        if error not in (0, errno.EINPROGRESS):
            client.close()
            upstream.close()
            return
        relay = _Relay(client, upstream)
        self._relays[client] = self._relays[upstream] = relay
        self._selector.register(upstream, selectors.EVENT_WRITE, relay)  # connected once writable
        self._interest[upstream] = selectors.EVENT_WRITE

    def _close(self, relay: _Relay) -> None:
        for sock in (relay.client, relay.upstream):
            self._relays.pop(sock, None)
            if self._interest.pop(sock, 0):
                self._selector.unregister(sock)
            sock.close()

    def _update(self, relay: _Relay) -> None:
        """Tell the selector what each socket waits for now; only changes cost a system call (epoll_ctl)."""
        for sock in (relay.client, relay.upstream):
            events = relay.interest(sock)
            current = self._interest.get(sock, 0)
            if events == current:
                continue
            if events and current:
                self._selector.modify(sock, events, relay)
            elif events:
                self._selector.register(sock, events, relay)
            else:
                self._selector.unregister(sock)
            if events:
                self._interest[sock] = events
            else:
                self._interest.pop(sock, None)

    def _service(self, sock: socket.socket, relay: _Relay, mask: int) -> None:
        if not relay.connected:
            if sock is relay.upstream and mask & selectors.EVENT_WRITE:
                if relay.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self._close(relay)  # backend refused: drop the client like a reset
                    return
                relay.connected = True
                self._update(relay)
            return
        try:
            for pipe in relay.pipes:
                if pipe.src is sock and mask & selectors.EVENT_READ:
                    data = sock.recv(RELAY_BUFFER)
                    if data:
                        pipe.buffer += data
                    else:
                        pipe.eof = True
                if pipe.dst is sock and mask & selectors.EVENT_WRITE and pipe.buffer:
                    sent = sock.send(pipe.buffer)
                    del pipe.buffer[:sent]
            for pipe in relay.pipes:  # write what just arrived at once: one loop turn of latency, not two
                if pipe.buffer:
                    try:
                        sent = pipe.dst.send(pipe.buffer)
                        del pipe.buffer[:sent]
                    except BlockingIOError:
                        pass
                if pipe.eof and not pipe.buffer and not pipe.shut:
                    pipe.shut = True
                    try:
                        pipe.dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
        except (ConnectionError, OSError):
            self._close(relay)
            return
        if relay.done:
            self._close(relay)
        else:
            self._update(relay)
