"""A network namespace of its own for a program that insists on a fixed port, with the API server relayed in.

MPI Operator v0.8.0 always serves its health check on ``:8080`` of every interface (``healthCheckPort`` is a
constant), so in the root namespace it collides with anything else on port 8080 of the machine (an embedded
target's Service, a second real control plane). In a namespace of its own the port is its alone. The namespace has
only ``lo``: no veth, no route, no packet can leave it. The one thing it must reach, kube-apiserver on the root
namespace's ``127.0.0.1:<port>``, is relayed: a listening socket is created *inside* the namespace (a socket
belongs to the namespace it was made in, so one short-lived thread enters the namespace to make it) and each
connection accepted there is piped to the root namespace's loopback. TLS stays end to end (the relay sees bytes).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import socket
import subprocess
import threading
from pathlib import Path

from harness.errors import ConfigError

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_BUFFER = 65536


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        raise ConfigError(f"real control plane: ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")


_OWNED = re.compile(r"^aibench-.+-(\d+)$")  # LoopbackNamespace names end in their owner's PID


def sweep_dead_owners() -> None:
    """Delete the namespaces of real control planes whose process died without stopping them (SIGKILL)."""
    root = Path("/run/netns")
    for entry in root.iterdir() if root.is_dir() else ():
        match = _OWNED.match(entry.name)
        if match is None or Path(f"/proc/{match.group(1)}").exists():
            continue
        with contextlib.suppress(ConfigError):
            _ip("netns", "delete", entry.name)
            log.info("removed network namespace %s left by a dead process", entry.name)


class LoopbackNamespace:
    """``ip netns`` namespace ``name`` whose ``127.0.0.1:port`` (for each relayed port) reaches the root namespace's."""

    def __init__(self, name: str, relayed_ports: tuple[int, ...]) -> None:
        self.name = name
        self.path = Path("/run/netns") / name
        self.relayed_ports = relayed_ports
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._created = False

    def start(self) -> None:
        if os.geteuid() != 0:
            raise ConfigError("real control plane: a network namespace for MPI Operator needs root")
        sweep_dead_owners()
        with contextlib.suppress(ConfigError):  # a leftover of a killed run with the same name
            _ip("netns", "delete", self.name)
        _ip("netns", "add", self.name)
        self._created = True
        _ip("-n", self.name, "link", "set", "lo", "up")
        for port in self.relayed_ports:
            listener = self._listen_inside(port)
            self._listeners.append(listener)
            thread = threading.Thread(
                target=self._accept, args=(listener, port), name=f"netns-relay-{port}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: the PID stays the program's)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def stop(self) -> None:
        self._stopping.set()
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._listeners.clear()
        self._threads.clear()
        if self._created:
            with contextlib.suppress(ConfigError):
                _ip("netns", "delete", self.name)
            self._created = False

    def _listen_inside(self, port: int) -> socket.socket:
        made: list[socket.socket] = []
        failure: list[BaseException] = []

        def make() -> None:  # setns affects only this thread, which ends right after
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    if _LIBC.setns(fd, CLONE_NEWNET) != 0:  # os.setns arrives only with Python 3.12
                        raise OSError(ctypes.get_errno(), f"setns: {os.strerror(ctypes.get_errno())}")
                finally:
                    os.close(fd)
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", port))
                sock.listen(64)
                made.append(sock)
            except OSError as exc:
                failure.append(exc)

        thread = threading.Thread(target=make, name=f"netns-listen-{port}")
        thread.start()
        thread.join()
        if failure or not made:
            raise ConfigError(f"real control plane: relay of port {port} into namespace {self.name}: {failure[0]}")
        return made[0]

    def _accept(self, listener: socket.socket, port: int) -> None:
        while not self._stopping.is_set():
            try:
                inside, _ = listener.accept()
            except OSError:
                return
            try:
                outside = socket.create_connection(("127.0.0.1", port), timeout=10)
                outside.settimeout(None)
            except OSError as exc:
                log.info("relay to 127.0.0.1:%d failed: %s", port, exc)
                inside.close()
                continue
            pair = _Pair(inside, outside)
            for src, dst in ((inside, outside), (outside, inside)):
                threading.Thread(target=pair.pump, args=(src, dst), name=f"netns-pipe-{port}", daemon=True).start()


class _Pair:
    """One relayed connection: two pumps; the second to finish closes both sockets."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self._sockets = (a, b)
        self._running = 2
        self._lock = threading.Lock()

    def pump(self, src: socket.socket, dst: socket.socket) -> None:
        """Copy one direction until EOF, then half-close the other side."""
        try:
            while data := src.recv(_BUFFER):
                dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
        except OSError:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            for sock in self._sockets:
                sock.close()
