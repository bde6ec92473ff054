"""An ``http.server`` serving from a daemon thread of this process, started and stopped as one thing.

Why a module of its own: the API server, the kube-state-metrics endpoint and the node agent's kubelet endpoints all
serve from a thread; each must stop the same way (leave the serve loop, close the listening socket, join the thread
for a bounded time) or a test run leaves sockets and threads behind. One class keeps that sequence in one place.
"""

from __future__ import annotations

import socketserver
import threading
from typing import Generic, TypeVar

__all__ = ["ServerThread"]

ServerT = TypeVar("ServerT", bound=socketserver.BaseServer)

#: How long :meth:`ServerThread.stop` waits for the serving thread (it only finishes a poll interval).
JOIN_TIMEOUT_S = 5.0


class ServerThread(Generic[ServerT]):
    """``server.serve_forever`` on a daemon thread named ``name``; ``poll_interval`` is how often the loop checks for
    shutdown (a shorter one makes :meth:`stop` return sooner)."""

    def __init__(self, server: ServerT, *, name: str, poll_interval: float = 0.5) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": poll_interval}, name=name, daemon=True
        )

    @property
    def port(self) -> int:
        """The port the server listens on (the one the OS chose when it was bound to port 0)."""
        address = self.server.server_address
        return int(address[1]) if isinstance(address, tuple) else 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Leave the serve loop (only if it ever ran: ``shutdown`` would wait forever), close the socket, join."""
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        if self._thread.ident is not None:
            self._thread.join(timeout=JOIN_TIMEOUT_S)
